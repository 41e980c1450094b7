// Command keywordtag is a Wildcat plugin in its own Go module, the way a
// plugin outside this repository is written: it tags every received message
// whose text contains one of the keywords of its configuration.
//
//	plugins:
//	  keywordtag:
//	    path: /opt/wildcat-plugins/keywordtag
//	    config:
//	      keywords: {refund: billing, invoice: billing, broken: support}
//
// Its go.mod requires github.com/wildcathub/wildcat and, because it lives
// inside this repository's tree, replaces it with the checkout (../../..);
// see sdk/README.md, "A plugin in its own module".
package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/wildcathub/wildcat/sdk"
)

// KeywordTag tags messages by keyword.
type KeywordTag struct {
	keywords map[string]string // lower-case keyword → tag
}

// Describe names the plugin and asks only for received messages.
func (*KeywordTag) Describe() sdk.Description {
	return sdk.Description{Name: "keywordtag", Version: "1.0.0", EventKinds: []string{"message.received"}}
}

// Configure reads plugins.keywordtag.config.keywords: keyword → tag.
func (k *KeywordTag) Configure(ctx context.Context, cfg map[string]any) error {
	raw, _ := cfg["keywords"].(map[string]any)
	if len(raw) == 0 {
		return fmt.Errorf("config.keywords: want a map of keyword to tag, got %v", cfg["keywords"])
	}
	k.keywords = make(map[string]string, len(raw))
	for word, tag := range raw {
		s, ok := tag.(string)
		if !ok || s == "" || word == "" {
			return fmt.Errorf("config.keywords.%s: want a non-empty tag, got %v", word, tag)
		}
		k.keywords[strings.ToLower(word)] = s
	}
	return nil
}

// Handle tags the event once with every tag whose keyword the text contains.
func (k *KeywordTag) Handle(ctx context.Context, ev *sdk.Event) ([]sdk.Action, error) {
	if ev.Message == nil || ev.Message.Text == "" {
		return nil, nil
	}
	text := strings.ToLower(ev.Message.Text)
	seen := map[string]bool{}
	var tags []string
	for word, tag := range k.keywords {
		if strings.Contains(text, word) && !seen[tag] {
			seen[tag] = true
			tags = append(tags, tag)
		}
	}
	if len(tags) == 0 {
		return nil, nil
	}
	sort.Strings(tags)
	return []sdk.Action{sdk.Tag(tags...)}, nil
}

func main() { sdk.Serve(&KeywordTag{}) }
