package daemon_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// wirePoll is the part of a poll (or vote) message the poll tests read.
type wirePoll struct {
	MessageID   string   `json:"messageId"`
	ChatID      string   `json:"chatId"`
	Type        string   `json:"type"`
	From        string   `json:"from"`
	Kind        string   `json:"kind"`
	Status      string   `json:"status"`
	IsGroup     bool     `json:"isGroup"`
	IsStatus    bool     `json:"isStatus"`
	IsBroadcast bool     `json:"isBroadcast"`
	Text        string   `json:"text"`
	Mentions    []string `json:"mentions"`
	Poll        *struct {
		Name            string `json:"name"`
		SelectableCount int    `json:"selectableCount"`
		Options         []struct {
			Name string `json:"name"`
			Hash string `json:"hash"`
		} `json:"options"`
	} `json:"poll"`
	PollVote *struct {
		PollMessageID   string   `json:"pollMessageId"`
		Decrypted       bool     `json:"decrypted"`
		SelectedOptions []string `json:"selectedOptions"`
	} `json:"pollVote"`
	PollTally *struct {
		Voters  int `json:"voters"`
		Options []struct {
			Name   string   `json:"name"`
			Hash   string   `json:"hash"`
			Votes  int      `json:"votes"`
			Voters []string `json:"voters"`
		} `json:"options"`
	} `json:"pollTally"`
}

func (c *client) pollMessage(acct, id string) wirePoll {
	c.t.Helper()
	var m wirePoll
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

func optionHash(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// tallyOf renders a poll's tally, "Pizza=2[ann bob] Sushi=0[] /2", with
// voters by the number's first digits after 1555123000.
func tallyOf(t *testing.T, m wirePoll) string {
	t.Helper()
	if m.PollTally == nil {
		t.Fatalf("poll %s has no pollTally", m.MessageID)
	}
	var parts []string
	for _, o := range m.PollTally.Options {
		if o.Hash != optionHash(o.Name) || o.Votes != len(o.Voters) {
			t.Fatalf("option %+v", o)
		}
		vs := make([]string, len(o.Voters))
		for i, v := range o.Voters {
			vs[i] = voterNames[v]
			if vs[i] == "" {
				vs[i] = v
			}
		}
		slices.Sort(vs)
		parts = append(parts, fmt.Sprintf("%s=%d[%s]", o.Name, o.Votes, strings.Join(vs, " ")))
	}
	return fmt.Sprintf("%s /%d", strings.Join(parts, " "), m.PollTally.Voters)
}

var voterNames = map[string]string{"15551230001@s.whatsapp.net": "ann", "15551230002@s.whatsapp.net": "bob"}

const (
	annPhone, bobPhone = "+15551230001", "+15551230002"
	annJID, bobJID     = "15551230001@s.whatsapp.net", "15551230002@s.whatsapp.net"
)

// createGroup makes a group of acct with participants over REST.
func createGroup(t *testing.T, c *client, acct, subject string, participants ...string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"subject": subject, "participants": participants})
	g := c.must(c.post("/v1/accounts/"+acct+"/groups", string(body)), 201).json(t)
	jid, _ := g["jid"].(string)
	if !strings.HasSuffix(jid, "@g.us") {
		t.Fatalf("created group %v", g)
	}
	return jid
}

// TestPollVotesTalliedOverREST: a poll sent to a group over REST is
// tallied as two members vote, one changes their vote and the other
// withdraws; each vote is a poll_vote message with its options decrypted,
// a redelivered vote counts once, and the tally shows on the message and
// in history pages.
func TestPollVotesTalliedOverREST(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("pollster")
	group := createGroup(t, c, "pollster", "Lunch club", annJID, bobJID)

	id := c.send("pollster", `{"to":"`+group+`","poll":{"name":"Lunch?","options":["Pizza","Sushi","Salad"]}}`)
	c.waitStatus("pollster", id, "sent", "delivered", "read")
	p := c.pollMessage("pollster", id)
	if p.Type != "poll" || p.Poll == nil || p.Poll.Name != "Lunch?" || len(p.Poll.Options) != 3 || p.Poll.Options[1].Hash != optionHash("Sushi") || !p.IsGroup {
		t.Fatalf("sent poll %+v", p)
	}
	if got, want := tallyOf(t, p), "Pizza=0[] Sushi=0[] Salad=0[] /0"; got != want {
		t.Fatalf("unvoted tally %q, want %q", got, want)
	}

	steps := []struct {
		name, from, id string
		options        []string
		want           string
	}{
		{"ann votes Pizza", annPhone, "VOTE1", []string{"Pizza"}, "Pizza=1[ann] Sushi=0[] Salad=0[] /1"},
		{"bob votes Pizza and Sushi", bobPhone, "VOTE2", []string{"Pizza", "Sushi"}, "Pizza=2[ann bob] Sushi=1[bob] Salad=0[] /2"},
		{"bob's vote redelivered", bobPhone, "VOTE2", []string{"Pizza", "Sushi"}, "Pizza=2[ann bob] Sushi=1[bob] Salad=0[] /2"},
		{"ann changes to Salad", annPhone, "VOTE3", []string{"Salad"}, "Pizza=1[bob] Sushi=1[bob] Salad=1[ann] /2"},
		{"bob withdraws", bobPhone, "VOTE4", []string{}, "Pizza=0[] Sushi=0[] Salad=1[ann] /1"},
	}
	for _, st := range steps {
		opts, _ := json.Marshal(st.options)
		vote := c.inject("pollster", fmt.Sprintf(`{"from":%q,"id":%q,"vote":{"pollId":%q,"options":%s}}`, st.from, st.id, id, opts))
		if got := tallyOf(t, c.pollMessage("pollster", id)); got != st.want {
			t.Fatalf("%s: tally %q, want %q", st.name, got, st.want)
		}
		v := c.pollMessage("pollster", vote)
		want := make([]string, len(st.options))
		for i, o := range st.options {
			want[i] = optionHash(o)
		}
		if v.Type != "poll_vote" || v.Kind != "message.received" || v.PollVote == nil || !v.PollVote.Decrypted ||
			v.PollVote.PollMessageID != id || !slices.Equal(v.PollVote.SelectedOptions, want) && len(want) > 0 || v.ChatID != group {
			t.Fatalf("%s: vote message %+v (pollVote %+v)", st.name, v, v.PollVote)
		}
	}

	// History pages carry the tally too.
	var page struct{ Messages []wirePoll }
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/pollster/messages?type=poll"), 200).body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 || tallyOf(t, page.Messages[0]) != "Pizza=0[] Sushi=0[] Salad=1[ann] /1" {
		t.Fatalf("history page %+v", page.Messages)
	}
}

// TestPollAndVoteInputIsRefused: a poll WhatsApp would not take is a 4xx
// naming the field and nothing is stored or sent; so is a vote that names
// no poll, an option the poll lacks, too many options, or a voter outside
// the poll's chat.
func TestPollAndVoteInputIsRefused(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("asker")
	thirteen := make([]string, 13)
	for i := range thirteen {
		thirteen[i] = fmt.Sprintf("o%d", i)
	}
	many, _ := json.Marshal(thirteen)
	sends := []struct {
		name, poll string
		status     int
		field      string
	}{
		{"one option", `{"name":"Q","options":["a"]}`, 400, "poll.options"},
		{"no options", `{"name":"Q"}`, 400, "poll.options"},
		{"thirteen options", `{"name":"Q","options":` + string(many) + `}`, 400, "poll.options"},
		{"a repeated option", `{"name":"Q","options":["a","b","a"]}`, 400, "poll.options[2]"},
		{"an empty option", `{"name":"Q","options":["a"," "]}`, 400, "poll.options[1]"},
		{"an option too long", `{"name":"Q","options":["` + strings.Repeat("x", 101) + `","b"]}`, 400, "poll.options[0]"},
		{"no name", `{"name":"","options":["a","b"]}`, 400, "poll.name"},
		{"a name too long", `{"name":"` + strings.Repeat("é", 256) + `","options":["a","b"]}`, 400, "poll.name"},
		{"more selectable than options", `{"name":"Q","options":["a","b"],"selectableCount":3}`, 400, "poll.selectableCount"},
		{"negative selectable", `{"name":"Q","options":["a","b"],"selectableCount":-1}`, 400, "poll.selectableCount"},
	}
	for _, tt := range sends {
		t.Run("send "+tt.name, func(t *testing.T) {
			checkProblem(t, c.post("/v1/accounts/asker/messages", `{"to":"`+annPhone+`","poll":`+tt.poll+`}`), tt.status, tt.field)
		})
	}
	checkProblem(t, c.post("/v1/accounts/asker/messages", `{"to":"`+annPhone+`","text":"and","poll":{"name":"Q","options":["a","b"]}}`), 400, "body")
	checkProblem(t, c.post("/v1/accounts/asker/messages", `{"to":"`+annPhone+`","poll":{"name":"Q","options":["a","b"]},"replyTo":"X1"}`), 400, "replyTo")
	if ms := c.allMessages("asker"); len(ms) != 0 {
		t.Fatalf("refused polls left %d messages, e.g. %+v", len(ms), ms[0])
	}

	// A single-choice poll to ann, and a text, to vote on.
	pollID := c.send("asker", `{"to":"`+annPhone+`","poll":{"name":"Colour?","options":["Red","Blue"],"selectableCount":1}}`)
	c.waitStatus("asker", pollID, "sent", "delivered", "read")
	textID := c.send("asker", `{"to":"`+annPhone+`","text":"not a poll"}`)
	c.waitStatus("asker", textID, "sent", "delivered", "read")
	votes := []struct {
		name, body string
		status     int
		field      string
	}{
		{"no poll id", `{"from":"` + annPhone + `","vote":{"options":["Red"]}}`, 400, "vote.pollId"},
		{"an unknown poll", `{"from":"` + annPhone + `","vote":{"pollId":"NOPE","options":["Red"]}}`, 422, "vote.pollId"},
		{"a text, not a poll", `{"from":"` + annPhone + `","vote":{"pollId":"` + textID + `","options":["Red"]}}`, 422, "vote.pollId"},
		{"an option the poll lacks", `{"from":"` + annPhone + `","vote":{"pollId":"` + pollID + `","options":["Green"]}}`, 422, "vote.options[0]"},
		{"two options on a single-choice poll", `{"from":"` + annPhone + `","vote":{"pollId":"` + pollID + `","options":["Red","Blue"]}}`, 422, "vote.options"},
		{"a voter outside the chat", `{"from":"` + bobPhone + `","vote":{"pollId":"` + pollID + `","options":["Red"]}}`, 422, "from"},
		{"a vote and a text", `{"from":"` + annPhone + `","text":"x","vote":{"pollId":"` + pollID + `","options":["Red"]}}`, 400, "body"},
		{"a vote with a group", `{"from":"` + annPhone + `","group":"120363000000000009@g.us","vote":{"pollId":"` + pollID + `","options":["Red"]}}`, 400, "group"},
	}
	for _, tt := range votes {
		t.Run("vote "+tt.name, func(t *testing.T) {
			checkProblem(t, c.post("/v1/accounts/asker/sim/inbound", tt.body), tt.status, tt.field)
		})
	}
	if ms := c.allMessages("asker"); len(ms) != 2 {
		t.Fatalf("refused votes were stored: %d messages", len(ms))
	}
	if got := tallyOf(t, c.pollMessage("asker", pollID)); got != "Red=0[] Blue=0[] /0" {
		t.Fatalf("refused votes were counted: %s", got)
	}
}

// TestStatusPostReachesOnlyItsRecipients: a status post goes to the
// contacts named and to nobody else, and needs them.
func TestStatusPostReachesOnlyItsRecipients(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	for _, id := range []string{"poster", "viewer", "bystander"} {
		c.connectSim(id)
	}
	viewer, bystander := sim.JID("viewer").String(), sim.JID("bystander").String()

	checkProblem(t, c.post("/v1/accounts/poster/messages", `{"to":"status@broadcast","text":"no audience"}`), 400, "statusRecipients")
	checkProblem(t, c.post("/v1/accounts/poster/messages", `{"to":"`+annPhone+`","text":"x","statusRecipients":["`+viewer+`"]}`), 400, "statusRecipients")
	checkProblem(t, c.post("/v1/accounts/poster/messages", `{"to":"status@broadcast","text":"x","statusRecipients":["120363000000000009@g.us"]}`), 422, "statusRecipients[0]")
	checkProblem(t, c.post("/v1/accounts/poster/messages", `{"to":"status@broadcast","location":{"lat":1,"lng":2},"statusRecipients":["`+viewer+`"]}`), 400, "body")
	if ms := c.allMessages("poster"); len(ms) != 0 {
		t.Fatalf("refused status posts left %d messages", len(ms))
	}

	id := c.send("poster", `{"to":"status@broadcast","text":"Open until 8 pm","statusRecipients":["`+viewer+`","`+annPhone+`"]}`)
	sent := c.waitStatus("poster", id, "delivered", "read")
	if sent.ChatID != "status@broadcast" {
		t.Fatalf("status post stored in %q", sent.ChatID)
	}
	if p := c.pollMessage("poster", id); !p.IsStatus || p.IsBroadcast {
		t.Fatalf("status post %+v", p)
	}
	var seen wirePoll
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/viewer/messages/" + id)
		if r.status != 200 {
			return fmt.Errorf("viewer has no status %s yet: %d", id, r.status)
		}
		return json.Unmarshal(r.body, &seen)
	})
	if !seen.IsStatus || seen.Text != "Open until 8 pm" || seen.ChatID != "status@broadcast" || seen.From != sim.JID("poster").String() {
		t.Fatalf("viewer's status %+v", seen)
	}
	// A message sent after the post reaches the bystander after anything
	// sent to them before it: the post, had it gone to them.
	after := c.send("poster", `{"to":"`+bystander+`","text":"after the post"}`)
	poll.Until(t, 30*time.Second, func() error {
		if r := c.get("/v1/accounts/bystander/messages/" + after); r.status != 200 {
			return fmt.Errorf("bystander has no %s yet", after)
		}
		return nil
	})
	checkProblem(t, c.get("/v1/accounts/bystander/messages/"+id), 404, "")
}

// TestBroadcastListSend: a send to a broadcast list is stored as one,
// and WhatsApp's receipts follow.
func TestBroadcastListSend(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("shop")
	id := c.send("shop", `{"to":"1764000000@broadcast","text":"New prices from Monday"}`)
	m := c.waitStatus("shop", id, "delivered", "read")
	if m.ChatID != "1764000000@broadcast" {
		t.Fatalf("broadcast stored in %q", m.ChatID)
	}
	if p := c.pollMessage("shop", id); !p.IsBroadcast || p.IsStatus || p.IsGroup {
		t.Fatalf("broadcast %+v", p)
	}
}

// TestMentionAllInAGroup: mention-all mentions every other participant of
// the group, and the members receive the mentions.
func TestMentionAllInAGroup(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("host")
	c.connectSim("guest")
	guest := sim.JID("guest").String()
	group := createGroup(t, c, "host", "Everyone", annJID, guest)

	checkProblem(t, c.post("/v1/accounts/host/messages", `{"to":"`+annPhone+`","text":"hi all","mentionAll":true}`), 400, "mentionAll")
	checkProblem(t, c.post("/v1/accounts/host/messages", `{"to":"`+group+`","location":{"lat":1,"lng":2},"mentionAll":true}`), 400, "mentionAll")

	id := c.send("host", `{"to":"`+group+`","text":"Meeting at 10, everyone","mentionAll":true}`)
	m := c.waitStatus("host", id, "sent", "delivered", "read")
	want := []string{annJID, guest}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(m.Mentions))
	if !slices.Equal(got, want) {
		t.Fatalf("mentions %v, want %v", got, want)
	}
	var recv wireMessage
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/guest/messages/" + id)
		if r.status != 200 {
			return fmt.Errorf("guest has no %s yet", id)
		}
		return json.Unmarshal(r.body, &recv)
	})
	if got := slices.Sorted(slices.Values(recv.Mentions)); !slices.Equal(got, want) || recv.ChatID != group {
		t.Fatalf("guest received %+v", recv)
	}
}

// TestChannelsOverREST: the sim's channels are listed and their posts
// paged newest first; bad input is a 4xx naming the parameter.
func TestChannelsOverREST(t *testing.T) {
	_, c := messagesDaemon(t, nil)
	c.connectSim("reader")
	var list struct {
		Channels []session.Channel `json:"channels"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/reader/channels"), 200).body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Channels) != 2 || list.Channels[0].JID != "120363000000000101@newsletter" || list.Channels[0].Name != "Wildcat News" || list.Channels[0].Role != "subscriber" {
		t.Fatalf("channels %+v", list.Channels)
	}
	type postPage struct {
		Messages []struct {
			MessageID string `json:"messageId"`
			ChatID    string `json:"chatId"`
			Text      string `json:"text"`
		} `json:"messages"`
		NextBefore *int `json:"nextBefore"`
	}
	base := "/v1/accounts/reader/channels/120363000000000101@newsletter/messages?limit=2"
	var walked []string
	path := base
	for range 5 {
		var p postPage
		if err := json.Unmarshal(c.must(c.get(path), 200).body, &p); err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			if m.ChatID != "120363000000000101@newsletter" || m.Text == "" {
				t.Fatalf("post %+v", m)
			}
			walked = append(walked, m.MessageID)
		}
		if p.NextBefore == nil {
			break
		}
		path = fmt.Sprintf("%s&before=%d", base, *p.NextBefore)
	}
	if got := strings.Join(walked, " "); got != "104 103 102 101 100" {
		t.Fatalf("walked %q", got)
	}
	// Reading channels needs messages:read.
	_, sendOnly := createKey(t, c, "sender", []string{"messages:send"}, []string{"reader"})
	_, reader := createKey(t, c, "reader", []string{"messages:read"}, []string{"reader"})
	c.as(sendOnly).must(c.as(sendOnly).get("/v1/accounts/reader/channels"), 403)
	c.as(sendOnly).must(c.as(sendOnly).get(base), 403)
	c.as(reader).must(c.as(reader).get("/v1/accounts/reader/channels"), 200)
	c.as(reader).must(c.as(reader).get(base), 200)
	for _, tt := range []struct {
		name, path string
		status     int
		field      string
	}{
		{"unknown channel", "/v1/accounts/reader/channels/120363999999999999@newsletter/messages", 404, "jid"},
		{"not a channel", "/v1/accounts/reader/channels/15551234567@s.whatsapp.net/messages", 400, "jid"},
		{"limit 0", base[:len(base)-len("limit=2")] + "limit=0", 400, "limit"},
		{"limit 1000", base[:len(base)-len("limit=2")] + "limit=1000", 400, "limit"},
		{"bad before", base + "&before=x", 400, "before"},
		{"unknown parameter", base + "&cursor=x", 400, "cursor"},
		{"unknown account", "/v1/accounts/nobody/channels", 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) { checkProblem(t, c.get(tt.path), tt.status, tt.field) })
	}
}
