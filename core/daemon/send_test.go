package daemon_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n fake png for tests")

// mediaServer serves media over HTTP on loopback, for sends by URL.
func mediaServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cat.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(pngBytes)
		case "/redirect":
			http.Redirect(w, r, "/cat.png", http.StatusFound)
		case "/big":
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write(bytes.Repeat([]byte("x"), 300<<10))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSendEveryKind sends each kind through the API to another sim
// account: the answer is 202 pending, the stored message turns sent and
// then read, and the recipient stores what WhatsApp would have shown it.
func TestSendEveryKind(t *testing.T) {
	d, c := messagesDaemon(t, func(cfg *config.Config) { cfg.Media.FetchAllowPrivate = true })
	c.connectSim("alice")
	c.connectSim("bob")
	srv := mediaServer(t)
	bob := sim.JID("bob").String()
	b64 := base64.StdEncoding.EncodeToString(pngBytes)
	up := c.must(c.do("POST", "/v1/media", "image/png", string(pngBytes)), 201).json(t)
	mediaID := up["mediaId"].(string)

	// Something to reply to, react to, edit and revoke.
	first := c.send("alice", fmt.Sprintf(`{"to":%q,"text":"first"}`, bob))
	c.waitStatus("alice", first, "read")
	theirs := c.inject("alice", `{"from":"15550007777","text":"from a customer"}`)

	tests := []struct {
		name, body string
		check      func(t *testing.T, sent wireMessage)
		// recipient is checked at bob when set
		recipient func(t *testing.T, got wireMessage)
	}{
		{"text", fmt.Sprintf(`{"to":%q,"text":"hello bob"}`, bob), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "text" && m.Text == "hello bob" && m.FromMe && m.Source == "api" && m.Kind == "message.sent", m)
		}, func(t *testing.T, m wireMessage) { expect(t, m.Text == "hello bob" && !m.FromMe, m) }},
		{"phone number recipient", `{"to":"+1 (555) 000-7777","text":"to a number"}`, func(t *testing.T, m wireMessage) {
			expect(t, m.ChatID == "15550007777@s.whatsapp.net", m)
		}, nil},
		{"reply with mention", fmt.Sprintf(`{"to":%q,"text":"@15550007777 see above","replyTo":%q,"mentions":["+15550007777"]}`, bob, first), func(t *testing.T, m wireMessage) {
			expect(t, m.Quoted != nil && m.Quoted.MessageID == first && len(m.Mentions) == 1 && m.Mentions[0] == "15550007777@s.whatsapp.net", m)
		}, func(t *testing.T, m wireMessage) { expect(t, m.Quoted != nil && m.Quoted.MessageID == first, m) }},
		{"image by mediaId with caption", fmt.Sprintf(`{"to":%q,"media":{"mediaId":%q},"caption":"our logo"}`, bob, mediaID), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "image" && m.HasMedia && m.Text == "our logo" && m.MediaID == mediaID && m.MediaURL == "/v1/media/"+mediaID &&
				m.Media.Mimetype == "image/png" && m.Media.Size == len(pngBytes), m)
		}, func(t *testing.T, m wireMessage) { expect(t, m.Type == "image" && m.Text == "our logo", m) }},
		{"image by URL through a redirect", fmt.Sprintf(`{"to":%q,"media":{"url":%q}}`, bob, srv.URL+"/redirect"), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "image" && m.MediaID == mediaID, m) // same bytes: the same stored media
		}, nil},
		{"document as base64", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"application/pdf","filename":"invoice.pdf"},"caption":"your invoice"}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "document" && m.Media.Filename == "invoice.pdf" && m.Text == "your invoice" && m.MediaID != "", m)
		}, func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "document" && m.Media.Filename == "invoice.pdf", m)
		}},
		{"voice note", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"audio/ogg; codecs=opus","kind":"voice","seconds":3}}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "voice" && m.Media.Voice, m)
		}, nil},
		{"audio inferred from mimetype", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"audio/mpeg"}}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "audio", m)
		}, nil},
		{"video", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"video/mp4"},"caption":"clip"}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "video" && m.Text == "clip", m)
		}, nil},
		{"gif", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"video/mp4","kind":"gif"}}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "gif", m)
		}, nil},
		{"sticker", fmt.Sprintf(`{"to":%q,"media":{"data":%q,"mimetype":"image/webp","kind":"sticker"}}`, bob, b64), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "sticker", m)
		}, nil},
		{"location", fmt.Sprintf(`{"to":%q,"location":{"lat":52.52,"lng":13.405,"name":"Office"}}`, bob), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "location" && m.Location != nil && m.Location.Lat == 52.52 && m.Location.Name == "Office", m)
		}, func(t *testing.T, m wireMessage) { expect(t, m.Type == "location", m) }},
		{"contact from name and phone", fmt.Sprintf(`{"to":%q,"contact":{"name":"Ann","phone":"+15550008888"}}`, bob), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "contact" && len(m.Contacts) == 1 && strings.Contains(m.Contacts[0].VCard, "waid=15550008888"), m)
		}, func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "contact" && m.Contacts[0].DisplayName == "Ann", m)
		}},
		{"contacts", fmt.Sprintf(`{"to":%q,"contacts":[{"name":"Ann","phone":"15550008888"},{"name":"Bo","vcard":"BEGIN:VCARD\nFN:Bo\nEND:VCARD"}]}`, bob), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "contacts" && len(m.Contacts) == 2, m)
		}, nil},
		{"reaction to a received message, chat from the target", fmt.Sprintf(`{"reaction":{"messageId":%q,"emoji":"👍"}}`, theirs), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "reaction" && m.Kind == "message.reaction" && m.Reaction != nil && m.Reaction.TargetID == theirs && m.Reaction.Emoji == "👍" &&
				m.ChatID == "15550007777@s.whatsapp.net", m)
		}, nil},
		{"edit", fmt.Sprintf(`{"to":%q,"edit":{"messageId":%q,"text":"first, edited"}}`, bob, first), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "edit" && m.Kind == "message.edited", m)
			// The target is edited right after the edit message is stored.
			poll.Until(t, 30*time.Second, func() error {
				if target := c.message("alice", first); !(target.Text == "first, edited" && target.Edited && len(target.EditHistory) == 1) {
					return fmt.Errorf("target after edit: %+v", target)
				}
				return nil
			})
		}, nil},
		{"revoke", fmt.Sprintf(`{"revoke":{"messageId":%q}}`, first), func(t *testing.T, m wireMessage) {
			expect(t, m.Type == "revoke" && m.Kind == "message.revoked", m)
			poll.Until(t, 30*time.Second, func() error {
				if target := c.message("alice", first); !target.Revoked {
					return fmt.Errorf("target after revoke: %+v", target)
				}
				return nil
			})
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := c.send("alice", tt.body)
			// pending → sent is immediate in the sim; read follows.
			m := c.waitStatus("alice", id, "sent", "delivered", "read")
			if len(m.RawMessage) == 0 || m.Error != "" {
				t.Fatalf("sent message not completed by the driver: %+v", m)
			}
			tt.check(t, m)
			if tt.recipient != nil {
				var got wireMessage
				poll.Until(t, 30*time.Second, func() error {
					r := c.get("/v1/accounts/bob/messages/" + id)
					if r.status != 200 {
						return fmt.Errorf("bob has not got %s: %d", id, r.status)
					}
					return json.Unmarshal(r.body, &got)
				})
				tt.recipient(t, got)
			}
		})
	}
	// Every send is one message; the edits and revokes changed their
	// targets, not added copies of them.
	p := c.page("/v1/accounts/alice/messages?fromMe=true&limit=500")
	if len(p.Messages) != len(tests)+1 {
		t.Fatalf("alice stored %d sent messages, want %d", len(p.Messages), len(tests)+1)
	}
	_ = d
}

func expect(t *testing.T, ok bool, m any) {
	t.Helper()
	if !ok {
		t.Fatalf("stored as %+v", m)
	}
}

// TestSendFailureIsRecorded: a send the session refuses turns failed, with
// the reason.
func TestSendFailureIsRecorded(t *testing.T) {
	d, c := messagesDaemon(t, nil)
	c.connectSim("flaky")
	d.Sim().SetFaults("flaky", sim.Faults{FailSends: errors.New("network unreachable")})
	id := c.send("flaky", `{"to":"15550001234","text":"will fail"}`)
	m := c.waitStatus("flaky", id, "failed")
	if !strings.Contains(m.Error, "network unreachable") || m.Text != "will fail" {
		t.Fatalf("failed message: %+v", m)
	}
	// The chat still shows it: it was ours, and pending first.
	ch := c.must(c.get("/v1/accounts/flaky/chats/15550001234@s.whatsapp.net"), 200).json(t)
	if ch["messageCount"] != 1.0 {
		t.Fatalf("chat %v", ch)
	}
}

// TestIdempotentRetries: retries with one Idempotency-Key get the first
// answer, byte for byte, and send once — also when they race.
func TestIdempotentRetries(t *testing.T) {
	d, c := messagesDaemon(t, nil)
	c.connectSim("idem")
	body := `{"to":"15550001234","text":"exactly once"}`
	first := c.do("POST", "/v1/accounts/idem/messages", "application/json", body, "Idempotency-Key", "order-42")
	if first.status != 202 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	var wg sync.WaitGroup
	replies := make([]reply, 8)
	for i := range replies {
		wg.Go(func() {
			replies[i] = c.do("POST", "/v1/accounts/idem/messages", "application/json", body, "Idempotency-Key", "order-42")
		})
	}
	wg.Wait()
	for _, r := range replies {
		if r.status != first.status || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry answered %d %s (replayed %q), first was %d %s", r.status, r.body, r.header.Get("Idempotent-Replayed"), first.status, first.body)
		}
	}
	// Concurrent first requests with a fresh key: one sends, the others
	// replay it or are told it is in progress — never a second message.
	for i := range replies {
		wg.Go(func() {
			replies[i] = c.do("POST", "/v1/accounts/idem/messages", "application/json", `{"to":"15550001234","text":"race"}`, "Idempotency-Key", "race-1")
		})
	}
	wg.Wait()
	accepted := map[string]bool{}
	for _, r := range replies {
		switch r.status {
		case 202:
			accepted[string(r.body)] = true
		case 409:
			checkProblem(t, r, 409, "Idempotency-Key")
		default:
			t.Fatalf("racing retry: %d %s", r.status, r.body)
		}
	}
	if len(accepted) != 1 {
		t.Fatalf("racing requests got %d different acceptances", len(accepted))
	}
	poll.Until(t, 30*time.Second, func() error {
		p := c.page("/v1/accounts/idem/messages?fromMe=true")
		if len(p.Messages) != 2 {
			return fmt.Errorf("%d messages sent, want 2", len(p.Messages))
		}
		return nil
	})
	// Same key, different request: refused.
	checkProblem(t, c.do("POST", "/v1/accounts/idem/messages", "application/json", `{"to":"15550001234","text":"other"}`, "Idempotency-Key", "order-42"), 422, "Idempotency-Key")
	// A refusal is not kept: the retry after fixing the cause runs.
	c.must(c.post("/v1/accounts", `{"id":"later","driver":"sim"}`), 201)
	checkProblem(t, c.do("POST", "/v1/accounts/later/messages", "application/json", body, "Idempotency-Key", "k1"), 409, "")
	c.must(c.post("/v1/accounts/later/connect", ""), 202)
	c.waitState("later", "connected")
	c.must(c.do("POST", "/v1/accounts/later/messages", "application/json", body, "Idempotency-Key", "k1"), 202)
	// Keys are per account.
	c.must(c.do("POST", "/v1/accounts/later/messages", "application/json", body, "Idempotency-Key", "order-42"), 202)
	_ = d
}

// TestSendRefusesBadInput: every bad send is a 4xx problem naming the field.
func TestSendRefusesBadInput(t *testing.T) {
	_, c := messagesDaemon(t, func(cfg *config.Config) { cfg.Media.MaxBytes = 64 << 10 })
	c.connectSim("strict")
	c.must(c.post("/v1/accounts", `{"id":"offline","driver":"sim"}`), 201)
	received := c.inject("strict", `{"from":"15550001111","text":"theirs"}`)
	srv := mediaServer(t)
	small := base64.StdEncoding.EncodeToString(pngBytes)
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 65<<10))
	msgs := "/v1/accounts/strict/messages"
	tests := []struct {
		name, path, body string
		status           int
		field            string
	}{
		{"bad phone", msgs, `{"to":"12","text":"x"}`, 422, "to"},
		{"letters for a phone", msgs, `{"to":"call me","text":"x"}`, 422, "to"},
		{"phone with leading zero", msgs, `{"to":"0155500011","text":"x"}`, 422, "to"},
		{"bad JID", msgs, `{"to":"abc@nowhere.example","text":"x"}`, 422, "to"},
		{"no recipient", msgs, `{"text":"x"}`, 422, "to"},
		{"nothing to send", msgs, `{"to":"15550001111"}`, 400, "body"},
		{"two contents", msgs, `{"to":"15550001111","text":"x","location":{"lat":1,"lng":2}}`, 400, "body"},
		{"caption without media", msgs, `{"to":"15550001111","text":"x","caption":"y"}`, 400, "caption"},
		{"unknown field", msgs, `{"to":"15550001111","txt":"x"}`, 400, "txt"},
		{"unknown account", "/v1/accounts/nobody/messages", `{"to":"15550001111","text":"x"}`, 404, ""},
		{"account not connected", "/v1/accounts/offline/messages", `{"to":"15550001111","text":"x"}`, 409, ""},
		{"reply to an unknown message", msgs, `{"to":"15550001111","text":"x","replyTo":"NOPE"}`, 422, "replyTo"},
		{"bad mention", msgs, `{"to":"15550001111","text":"x","mentions":["nobody"]}`, 422, "mentions[0]"},
		{"reaction to an unknown message", msgs, `{"to":"15550001111","reaction":{"messageId":"NOPE","emoji":"x"}}`, 422, "reaction.messageId"},
		{"reaction in another chat", msgs, fmt.Sprintf(`{"to":"15550002222","reaction":{"messageId":%q,"emoji":"x"}}`, received), 422, "to"},
		{"edit of their message", msgs, fmt.Sprintf(`{"edit":{"messageId":%q,"text":"mine now"}}`, received), 422, "edit.messageId"},
		{"latitude off the globe", msgs, `{"to":"15550001111","location":{"lat":91,"lng":2}}`, 400, "location.lat"},
		{"contact without phone or vcard", msgs, `{"to":"15550001111","contact":{"name":"Ann"}}`, 422, "contact.phone"},
		{"media two ways", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"url":"https://example.com/a.png","data":%q,"mimetype":"image/png"}}`, small), 400, "media"},
		{"media unknown id", msgs, `{"to":"15550001111","media":{"mediaId":"0000000000000000000000000000000000000000000000000000000000000000"}}`, 422, "media.mediaId"},
		{"media bad base64", msgs, `{"to":"15550001111","media":{"data":"%%%","mimetype":"image/png"}}`, 400, "media.data"},
		{"media data without mimetype", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q}}`, small), 400, "media.mimetype"},
		{"media too large", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q,"mimetype":"application/pdf"}}`, big), 413, "media.data"},
		{"media URL to 127.0.0.1", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"url":%q}}`, srv.URL+"/cat.png"), 422, "media.url"},
		{"media URL to localhost", msgs, `{"to":"15550001111","media":{"url":"http://localhost:1/x.png"}}`, 422, "media.url"},
		{"media URL to cloud metadata", msgs, `{"to":"15550001111","media":{"url":"http://169.254.169.254/latest/meta-data"}}`, 422, "media.url"},
		{"media URL not http", msgs, `{"to":"15550001111","media":{"url":"file:///etc/passwd"}}`, 422, "media.url"},
		{"unsupported mimetype", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q,"mimetype":"text/html"}}`, small), 415, "media.mimetype"},
		{"mimetype wrong for kind", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q,"mimetype":"image/png","kind":"voice"}}`, small), 415, "media.mimetype"},
		{"unknown kind", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q,"mimetype":"image/png","kind":"hologram"}}`, small), 400, "media.kind"},
		{"caption on a voice note", msgs, fmt.Sprintf(`{"to":"15550001111","media":{"data":%q,"mimetype":"audio/ogg","kind":"voice"},"caption":"hi"}`, small), 400, "caption"},
		{"text with media", msgs, fmt.Sprintf(`{"to":"15550001111","text":"hi","media":{"data":%q,"mimetype":"image/png"}}`, small), 400, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblem(t, c.do("POST", tt.path, "application/json", tt.body), tt.status, tt.field)
		})
	}
	t.Run("bad idempotency key", func(t *testing.T) {
		checkProblem(t, c.do("POST", msgs, "application/json", `{"to":"15550001111","text":"x"}`, "Idempotency-Key", "has spaces"), 400, "Idempotency-Key")
	})
	// None of the refusals stored anything.
	if p := c.page(msgs + "?fromMe=true"); len(p.Messages) != 0 {
		t.Fatalf("refused sends stored %d messages", len(p.Messages))
	}
}
