package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// wireMessage is the part of a listed message the tests look at.
type wireMessage struct {
	ID        string   `json:"id"`
	MessageID string   `json:"messageId"`
	ChatID    string   `json:"chatId"`
	From      string   `json:"from"`
	FromMe    bool     `json:"fromMe"`
	Timestamp int64    `json:"timestamp"`
	Type      string   `json:"type"`
	Text      string   `json:"text"`
	HasMedia  bool     `json:"hasMedia"`
	MediaID   string   `json:"mediaId"`
	MediaURL  string   `json:"mediaUrl"`
	Source    string   `json:"source"`
	Kind      string   `json:"kind"`
	Status    string   `json:"status"`
	Error     string   `json:"error"`
	Edited    bool     `json:"edited"`
	Revoked   bool     `json:"revoked"`
	Tags      []string `json:"tags"`
	Media     *struct {
		Mimetype string `json:"mimetype"`
		Size     int    `json:"size"`
		Filename string `json:"filename"`
		Caption  string `json:"caption"`
		Voice    bool   `json:"voice"`
		GIF      bool   `json:"gif"`
	} `json:"media"`
	Location *struct {
		Lat  float64 `json:"lat"`
		Name string  `json:"name"`
	} `json:"location"`
	Contacts []struct {
		DisplayName string `json:"displayName"`
		VCard       string `json:"vcard"`
	} `json:"contacts"`
	Reaction *struct {
		TargetID string `json:"targetId"`
		Emoji    string `json:"emoji"`
	} `json:"reaction"`
	Quoted *struct {
		MessageID string `json:"messageId"`
	} `json:"quoted"`
	Mentions    []string          `json:"mentions"`
	EditHistory []json.RawMessage `json:"editHistory"`
	RawMessage  []byte            `json:"rawMessage"`
}

type wirePage struct {
	Messages   []wireMessage `json:"messages"`
	NextCursor *string       `json:"nextCursor"`
}

func (c *client) page(path string) wirePage {
	c.t.Helper()
	r := c.must(c.get(path), 200)
	var p wirePage
	if err := json.Unmarshal(r.body, &p); err != nil {
		c.t.Fatalf("page %s: %v: %s", path, err, r.body)
	}
	return p
}

func (c *client) message(acct, id string) wireMessage {
	c.t.Helper()
	var m wireMessage
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// inject stores a message from an outside contact and returns its id.
func (c *client) inject(acct, body string) string {
	c.t.Helper()
	r := c.must(c.post("/v1/accounts/"+acct+"/sim/inbound", body), 201).json(c.t)
	return r["messageId"].(string)
}

// send posts a message and returns its id once it is accepted.
func (c *client) send(acct, body string) string {
	c.t.Helper()
	r := c.must(c.post("/v1/accounts/"+acct+"/messages", body), 202).json(c.t)
	if r["status"] != "pending" || r["id"] != acct+":"+r["messageId"].(string) {
		c.t.Fatalf("send answer %v", r)
	}
	return r["messageId"].(string)
}

// waitStatus waits until the message has one of the statuses.
func (c *client) waitStatus(acct, id string, want ...string) wireMessage {
	c.t.Helper()
	var m wireMessage
	poll.Until(c.t, 30*time.Second, func() error {
		m = c.message(acct, id)
		if !slices.Contains(want, m.Status) {
			return fmt.Errorf("message %s is %q, want %v", id, m.Status, want)
		}
		return nil
	})
	return m
}

func ids(ms []wireMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.MessageID
	}
	return out
}

// TestHistoryFilters stores a known history and checks every filter alone
// and combined: each answer must be exactly the expected messages, newest
// first.
func TestHistoryFilters(t *testing.T) {
	d, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, nil)
	c.connectSim("hist")
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).Unix()
	type seed struct{ id, from, body string }
	seeds := []seed{
		{"H01", "15550001111", `"text":"Hello World"`},
		{"H02", "15550002222", `"text":"hello again","pushName":"Bo"`},
		{"H03", "15550001111", `"media":{"kind":"image","mimetype":"image/png","caption":"a Picture"}`},
		{"H04", "15550003333", `"text":"nothing to see"`},
		{"H05", "15550002222", `"location":{"lat":1,"lng":2,"name":"HQ"}`},
		{"H06", "15550001111", `"text":"50% off (today)"`},
	}
	for i, s := range seeds {
		c.inject("hist", fmt.Sprintf(`{"from":"+%s","id":%q,"timestamp":%d,%s}`, s.from, s.id, base+int64(i)*60, s.body))
	}
	// One message of ours, in Ann's chat, newest of all.
	out := c.send("hist", `{"to":"+1 555 000 1111","text":"hello from us"}`)
	c.waitStatus("hist", out, "sent", "delivered", "read")
	since := time.Unix(base+120, 0).UTC().Format(time.RFC3339)
	until := fmt.Sprint(base + 300)
	all := []string{out, "H06", "H05", "H04", "H03", "H02", "H01"}

	tests := []struct {
		name, query string
		want        []string
	}{
		{"everything newest first", "", all},
		{"chat by JID", "chatId=15550001111@s.whatsapp.net", []string{out, "H06", "H03", "H01"}},
		{"chat by phone number", "chatId=" + url.QueryEscape("+15550002222"), []string{"H05", "H02"}},
		{"unknown chat is empty", "chatId=15559999999", nil},
		{"from", "from=15550001111", []string{"H06", "H03", "H01"}},
		{"from us", "from=" + url.QueryEscape(sim.JID("hist").String()), []string{out}},
		{"type", "type=image", []string{"H03"}},
		{"type location", "type=location", []string{"H05"}},
		{"fromMe true", "fromMe=true", []string{out}},
		{"fromMe false", "fromMe=false", all[1:]},
		{"since inclusive (RFC 3339)", "since=" + url.QueryEscape(since), []string{out, "H06", "H05", "H04", "H03"}},
		{"until exclusive (Unix)", "until=" + until, []string{"H05", "H04", "H03", "H02", "H01"}},
		{"since and until", "since=" + fmt.Sprint(base+60) + "&until=" + fmt.Sprint(base+180), []string{"H03", "H02"}},
		{"q ignores case", "q=HELLO", []string{out, "H02", "H01"}},
		{"q finds captions", "q=picture", []string{"H03"}},
		{"q is literal, not a pattern", "q=" + url.QueryEscape("% off ("), []string{"H06"}},
		{"q with no match", "q=zebra", nil},
		{"combined", "chatId=15550001111&fromMe=false&q=o", []string{"H06", "H01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := c.page("/v1/accounts/hist/messages?" + tt.query)
			if got := ids(p.Messages); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if p.NextCursor != nil {
				t.Fatalf("nextCursor %q on a single page", *p.NextCursor)
			}
			for _, m := range p.Messages {
				if len(m.RawMessage) != 0 {
					t.Fatal("a listed message carries its raw proto")
				}
			}
		})
	}

	// The single read has everything, raw proto included.
	m := c.message("hist", "H03")
	if m.Type != "image" || !m.HasMedia || m.Text != "a Picture" || len(m.RawMessage) == 0 || m.Source != "phone" || m.ID != "hist:H03" {
		t.Fatalf("GET message: %+v", m)
	}

	// Chats: one row per chat, by last activity, with unread counts.
	var chats struct {
		Chats []struct {
			ID           string `json:"id"`
			Name         string `json:"name"`
			UnreadCount  int    `json:"unreadCount"`
			MessageCount int    `json:"messageCount"`
			LastActivity int64  `json:"lastActivity"`
			LastMessage  struct {
				MessageID string `json:"messageId"`
				FromMe    bool   `json:"fromMe"`
			} `json:"lastMessage"`
		} `json:"chats"`
		NextCursor *string `json:"nextCursor"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/hist/chats"), 200).body, &chats); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, ch := range chats.Chats {
		got = append(got, fmt.Sprintf("%s unread=%d n=%d last=%s", strings.TrimSuffix(ch.ID, "@s.whatsapp.net"), ch.UnreadCount, ch.MessageCount, ch.LastMessage.MessageID))
	}
	want := []string{
		fmt.Sprintf("15550001111 unread=0 n=4 last=%s", out), // we wrote last: read
		"15550002222 unread=2 n=2 last=H05",
		"15550003333 unread=1 n=1 last=H04",
	}
	if !slices.Equal(got, want) || chats.NextCursor != nil {
		t.Fatalf("chats:\n got %v\nwant %v", got, want)
	}
	// Paginated like messages.
	p1 := c.must(c.get("/v1/accounts/hist/chats?limit=2"), 200).json(t)
	cur, _ := p1["nextCursor"].(string)
	if cur == "" {
		t.Fatalf("first chat page has no cursor: %v", p1)
	}
	p2 := c.must(c.get("/v1/accounts/hist/chats?limit=2&cursor="+cur), 200).json(t)
	if rows, _ := p2["chats"].([]any); len(rows) != 1 || p2["nextCursor"] != nil {
		t.Fatalf("second chat page: %v", p2)
	}
	one := c.must(c.get("/v1/accounts/hist/chats/15550002222@s.whatsapp.net"), 200).json(t)
	if one["id"] != "15550002222@s.whatsapp.net" || one["unreadCount"] != 2.0 || one["name"] != "Bo" {
		t.Fatalf("one chat: %v", one)
	}
	_ = d
}

// TestHistoryPagesUnderConcurrentInserts walks a chat's history in small
// pages while messages keep arriving — new ones, and history-synced ones
// with old timestamps that land among pages already read and pages not yet
// read. The walk must return every message that existed when it started,
// none twice.
func TestHistoryPagesUnderConcurrentInserts(t *testing.T) {
	_, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, nil)
	c.connectSim("pager")
	base := time.Now().Add(-24 * time.Hour).Unix()
	const initial = 120
	want := map[string]bool{}
	for i := range initial {
		id := fmt.Sprintf("P%04d", i)
		// Pairs share a second: the tie-break on the id is exercised too.
		c.inject("pager", fmt.Sprintf(`{"from":"15550004444","id":%q,"timestamp":%d,"text":"m%d"}`, id, base+int64(i/2), i))
		want[id] = true
	}

	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		written atomic.Int64 // concurrent inserts so far
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts := time.Now().Unix() // newer than everything
			if i%2 == 1 {
				ts = base + int64(i%initial)/2 // among the existing ones
			}
			body := fmt.Sprintf(`{"from":"15550004444","id":"N%04d","timestamp":%d,"text":"late %d"}`, i, ts, i)
			r := c.do("POST", "/v1/accounts/pager/sim/inbound", "application/json", body)
			if r.status != 201 {
				t.Errorf("concurrent insert: %d %s", r.status, r.body)
				return
			}
			written.Add(1)
		}
	})

	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		path := "/v1/accounts/pager/messages?chatId=15550004444&limit=7"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		p := c.page(path)
		pages++
		prev := ""
		for _, m := range p.Messages {
			seen[m.MessageID]++
			key := fmt.Sprintf("%012d:%s", m.Timestamp, m.MessageID)
			if prev != "" && key >= prev {
				t.Fatalf("page not newest first: %s after %s", key, prev)
			}
			prev = key
		}
		if p.NextCursor == nil {
			break
		}
		cursor = url.QueryEscape(*p.NextCursor)
		// Let the writer interleave: the next page is read only after at
		// least one more message was stored since this one.
		before := written.Load()
		poll.Until(t, 30*time.Second, func() error {
			if written.Load() == before {
				return errors.New("no insert since the last page yet")
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("message %s returned %d times", id, n)
		}
	}
	for id := range want {
		if seen[id] == 0 {
			t.Errorf("message %s skipped", id)
		}
	}
	t.Logf("%d pages, %d messages seen (%d existed at the start)", pages, len(seen), initial)
}

// TestReadRoutesRefuseBadInput: every bad query is a 4xx problem naming
// the parameter.
func TestReadRoutesRefuseBadInput(t *testing.T) {
	_, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, nil)
	c.connectSim("reader")
	c.inject("reader", `{"from":"15550005555","text":"one"}`)
	c.inject("reader", `{"from":"15550006666","text":"two"}`)
	chatCursor, _ := c.must(c.get("/v1/accounts/reader/chats?limit=1"), 200).json(t)["nextCursor"].(string)
	msgs := "/v1/accounts/reader/messages"
	tests := []struct {
		name, path string
		status     int
		field      string
	}{
		{"cursor not base64", msgs + "?cursor=%25%25%25", 400, "cursor"},
		{"cursor of something else", msgs + "?cursor=" + "bm90IGEgY3Vyc29y", 400, "cursor"},
		{"chat cursor for messages", msgs + "?cursor=" + chatCursor, 400, "cursor"},
		{"message cursor shape for chats", "/v1/accounts/reader/chats?cursor=abc", 400, "cursor"},
		{"limit 0", msgs + "?limit=0", 400, "limit"},
		{"limit 10,000", msgs + "?limit=10000", 400, "limit"},
		{"limit not a number", msgs + "?limit=ten", 400, "limit"},
		{"limit negative", msgs + "?limit=-1", 400, "limit"},
		{"chats limit 0", "/v1/accounts/reader/chats?limit=0", 400, "limit"},
		{"unknown parameter", msgs + "?chat_id=x", 400, "chat_id"},
		{"repeated parameter", msgs + "?type=text&type=image", 400, "type"},
		{"bad type", msgs + "?type=hologram", 400, "type"},
		{"bad fromMe", msgs + "?fromMe=perhaps", 400, "fromMe"},
		{"bad since", msgs + "?since=yesterday", 400, "since"},
		{"bad until", msgs + "?until=2025-13-01", 400, "until"},
		{"until before since", msgs + "?since=2000&until=1000", 400, "until"},
		{"bad chat id", msgs + "?chatId=not-a-number", 400, "chatId"},
		{"bad from", msgs + "?from=12", 400, "from"},
		{"q not UTF-8", msgs + "?q=%ff%fe", 400, "q"},
		{"malformed escape", msgs + "?q=%u002e", 400, "query"},
		{"q too long", msgs + "?q=" + strings.Repeat("x", 300), 400, "q"},
		{"unknown account", "/v1/accounts/nobody/messages", 404, ""},
		{"unknown account chats", "/v1/accounts/nobody/chats", 404, ""},
		{"unknown message", msgs + "/NOPE", 404, ""},
		{"unknown chat", "/v1/accounts/reader/chats/15559999999@s.whatsapp.net", 404, ""},
		{"malformed chat", "/v1/accounts/reader/chats/xyz", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.get(tt.path)
			checkProblem(t, r, tt.status, tt.field)
		})
	}
}

func checkProblem(t *testing.T, r reply, status int, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %s", ct, r.body)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem is not JSON: %s", r.body)
	}
	if p.Field != field || p.Status != status || p.Detail == "" {
		t.Fatalf("problem %+v, want field %q", p, field)
	}
}

func messagesDaemon(t *testing.T, mutate func(cfg *config.Config)) (*daemon.Daemon, *client) {
	cfg := accountsConfig(t)
	if mutate != nil {
		mutate(&cfg)
	}
	return accountsDaemon(t, cfg, time.Millisecond, nil)
}
