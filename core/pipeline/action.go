package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// ActionType names what an inline stage asks for.
type ActionType string

const (
	// ActionReply sends a message to the event's chat, quoting it (unless
	// the action sets NoQuote).
	ActionReply ActionType = "reply"
	// ActionSend sends a message anywhere, from any account.
	ActionSend ActionType = "send"
	// ActionDrop: later stages skip the event; it stays stored.
	ActionDrop ActionType = "drop"
	// ActionTag adds tags to the event.
	ActionTag ActionType = "tag"
	// ActionAnnotate sets annotations (key → value) on the event.
	ActionAnnotate ActionType = "annotate"
	// ActionRoute delivers the event only to the named sink stages (by
	// stage name or sink name) instead of every matching one.
	ActionRoute ActionType = "route"
	// ActionReact sends a reaction (Send.Reaction) from the event's account;
	// To defaults to the event's chat.
	ActionReact ActionType = "react"
	// ActionMarkRead sends the read receipt of the event's message
	// (Options.ReadMarker).
	ActionMarkRead ActionType = "markRead"
)

var actionTypes = [8]ActionType{ActionReply, ActionSend, ActionDrop, ActionTag, ActionAnnotate, ActionRoute, ActionReact, ActionMarkRead}

// Action is one effect an inline stage returns.
type Action struct {
	Type ActionType
	// Send is the message of reply and send. For reply, To and ReplyTo
	// default to the event's chat and message.
	Send *session.SendRequest
	// AccountID sends from another account (send only); default the
	// event's.
	AccountID string
	// NoQuote makes a reply a plain message in the event's chat instead
	// of quoting the event's message (rule replies: ctx.reply quotes only
	// when asked to, by setting Send.ReplyTo itself).
	NoQuote     bool
	Tags        []string
	Annotations map[string]string
	Sinks       []string
	// Origin names who inside the stage asked for the action (a rule's
	// name); a failure of the action is recorded with it.
	Origin string
}

// external reports whether the action acts on the world (a message or a
// receipt) rather than on the event (tags, annotations, route, drop).
func (a Action) external() bool {
	switch a.Type {
	case ActionDrop, ActionTag, ActionAnnotate, ActionRoute:
		return false
	}
	return true
}

// Reply answers the event's chat with text, quoting the event's message.
func Reply(text string) Action {
	return Action{Type: ActionReply, Send: &session.SendRequest{Text: text}}
}

// Send sends req from accountID ("" means the event's account).
func Send(accountID string, req *session.SendRequest) Action {
	return Action{Type: ActionSend, AccountID: accountID, Send: req}
}

// Drop stops the event here.
func Drop() Action { return Action{Type: ActionDrop} }

// Tag adds tags.
func Tag(tags ...string) Action { return Action{Type: ActionTag, Tags: tags} }

// Annotate sets annotations.
func Annotate(kv map[string]string) Action { return Action{Type: ActionAnnotate, Annotations: kv} }

// Route restricts delivery to the named sinks.
func Route(sinks ...string) Action { return Action{Type: ActionRoute, Sinks: sinks} }

// React sends a reaction message (req.Reaction set) from the event's
// account, to req.To or else the event's chat.
func React(req *session.SendRequest) Action { return Action{Type: ActionReact, Send: req} }

// MarkRead marks the event's message read.
func MarkRead() Action { return Action{Type: ActionMarkRead} }

// sendRequest resolves a reply, send or react action into the request the Sender
// gets, from which account. Its ID is derived from (event, stage, action
// index) unless the stage set one, so re-running the event after a crash or
// a retry sends a message with the same WhatsApp id — recognisable as the
// same reply instead of a second one.
func sendRequest(ev *event.Event, stage string, idx int, a Action, source event.Source) (string, *session.SendRequest, error) {
	if a.Send == nil {
		return "", nil, fmt.Errorf("%s action without a message", a.Type)
	}
	req := *a.Send
	account := ev.AccountID
	if a.Type == ActionSend {
		if a.AccountID != "" {
			account = a.AccountID
		}
		if req.To == "" {
			return "", nil, fmt.Errorf("send action without a recipient")
		}
	} else {
		// reply and react: to the event's chat unless the stage said.
		if req.To == "" {
			req.To = ev.ChatID
			if req.To == "" && ev.Message != nil {
				req.To = ev.Message.ChatID
			}
		}
		if req.To == "" {
			return "", nil, fmt.Errorf("%s to a %s event, which has no chat", a.Type, ev.Kind)
		}
		if a.Type == ActionReply && req.ReplyTo == nil && !a.NoQuote && ev.Message != nil && ev.Message.MessageID != "" {
			req.ReplyTo = &session.QuoteRef{MessageID: ev.Message.MessageID, Sender: ev.Message.From, Message: ev.Message}
		}
	}
	req.Source = source
	if req.ID == "" {
		req.ID = deterministicMessageID(ev.ID, stage, idx)
	}
	return account, &req, nil
}

// deterministicMessageID looks like the ids WhatsApp Web generates
// ("3EB0" + 18 upper-case hex digits).
func deterministicMessageID(eventID, stage string, idx int) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + stage + "\x00" + strconv.Itoa(idx)))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(sum[:9]))
}
