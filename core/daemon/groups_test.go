package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// wireGroup is a group as the API answers it.
type wireGroup struct {
	JID          string `json:"jid"`
	Name         string `json:"name"`
	Topic        string `json:"topic"`
	Owner        string `json:"owner"`
	Locked       bool   `json:"locked"`
	Announce     bool   `json:"announce"`
	JoinApproval bool   `json:"joinApproval"`
	PictureID    string `json:"pictureId"`
	Participants []struct {
		JID  string `json:"jid"`
		PN   string `json:"pn"`
		LID  string `json:"lid"`
		Role string `json:"role"`
	} `json:"participants"`
}

func (g wireGroup) role(jid string) string {
	for _, p := range g.Participants {
		if p.JID == jid {
			return p.Role
		}
	}
	return ""
}

func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return v
}

type wireResults struct {
	Results []struct {
		JID    string `json:"jid"`
		Status string `json:"status"`
	} `json:"results"`
}

func (r wireResults) statuses() string {
	var out []string
	for _, x := range r.Results {
		out = append(out, x.Status)
	}
	return strings.Join(out, ",")
}

// groupPath is the path of a group of an account.
func groupPath(acct, jid string, rest ...string) string {
	return "/v1/accounts/" + acct + "/groups/" + url.PathEscape(jid) + strings.Join(rest, "")
}

func phoneOf(acct string) string { return "+" + sim.JID(acct).User }

// groupEvents are the group.update events the account got for the group.
func groupEvents(rec *recorder, acct, jid string) []*event.GroupUpdate {
	var out []*event.GroupUpdate
	for _, ev := range rec.matching(func(ev *event.Event) bool {
		return ev.AccountID == acct && ev.Kind == event.KindGroupUpdate && ev.ChatID == jid
	}) {
		out = append(out, ev.Group)
	}
	return out
}

func waitGroupEvent(t *testing.T, rec *recorder, acct, jid, what string, match func(u *event.GroupUpdate) bool) *event.GroupUpdate {
	t.Helper()
	var found *event.GroupUpdate
	poll.Until(t, 30*time.Second, func() error {
		for _, u := range groupEvents(rec, acct, jid) {
			if match(u) {
				found = u
				return nil
			}
		}
		return fmt.Errorf("%s has no group.update %s", acct, what)
	})
	return found
}

// waitChatName waits until the account's chat with the group carries name.
func waitChatName(t *testing.T, c *client, acct, jid, name string) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/" + acct + "/chats/" + url.PathEscape(jid))
		if r.status != 200 {
			return fmt.Errorf("chat: %d %s", r.status, r.body)
		}
		if got := r.json(t)["name"]; got != name {
			return fmt.Errorf("chat name %q, want %q", got, name)
		}
		return nil
	})
}

// waitGroupMessage waits until the account has the message of the group
// chat with text, from from.
func waitGroupMessage(t *testing.T, c *client, acct, jid, from, text string) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		for _, m := range c.allMessages(acct) {
			if m.ChatID == jid && m.Text == text {
				if m.From != from || !m.IsGroup || m.FromMe {
					return fmt.Errorf("%s got %q from %s (group %v, fromMe %v), want from %s", acct, text, m.From, m.IsGroup, m.FromMe, from)
				}
				return nil
			}
		}
		return fmt.Errorf("%s has no %q in %s", acct, text, jid)
	})
}

// TestGroupRoutes drives every groups route over REST on sim accounts, on
// both engines: the owner creates a group, its sim members hear of every
// change as group.update events and see the subject as the chat's name,
// group messages reach every sim member, admin rights are enforced, invite
// links and join approval work, and the group outlives a restart.
func TestGroupRoutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		cfg := engineConfig(t, e)
		rec := &recorder{}
		d1, c := accountsDaemon(t, cfg, time.Millisecond, rec)
		for _, id := range []string{"gowner", "gbob", "gcarol"} {
			c.connectSim(id)
		}
		owner, bob, carol := sim.JID("gowner").String(), sim.JID("gbob").String(), sim.JID("gcarol").String()
		const ann = "15551230001@s.whatsapp.net"

		// Create: the owner is superadmin; phone numbers and LIDs resolve.
		r := c.must(c.post("/v1/accounts/gowner/groups", fmt.Sprintf(`{"subject":"Team","participants":[%q,%q,"+15551230001"]}`,
			phoneOf("gbob"), sim.LID("gcarol").String())), 201)
		g := decode[wireGroup](t, r)
		if g.JID != sim.GroupJIDFor("gowner", 1) || g.Name != "Team" || g.Owner != owner || len(g.Participants) != 4 ||
			g.role(owner) != "superadmin" || g.role(bob) != "member" || g.role(carol) != "member" || g.role(ann) != "member" {
			t.Fatalf("created %s", r.body)
		}
		if loc := r.header.Get("Location"); loc != "/v1/accounts/gowner/groups/"+g.JID {
			t.Fatalf("Location %q", loc)
		}
		jid := g.JID
		// The members heard they were added, with the group's info and the
		// actor; their chat is named after the group before any message.
		added := waitGroupEvent(t, rec, "gbob", jid, "added", func(u *event.GroupUpdate) bool { return u.Self == event.GroupSelfAdded })
		if added.Actor != owner || added.ActorLID != sim.LID("gowner").String() || added.Info == nil || added.Info.Name != "Team" || len(added.Info.Participants) != 4 {
			t.Fatalf("bob's event %+v", added)
		}
		if !slices.ContainsFunc(added.Participants, func(p event.GroupParticipant) bool {
			return p.JID == bob && p.PN == bob && p.LID == sim.LID("gbob").String()
		}) {
			t.Fatalf("bob's forms missing: %+v", added.Participants)
		}
		waitChatName(t, c, "gbob", jid, "Team")
		if own := groupEvents(rec, "gowner", jid); len(own) != 1 || own[0].Self != event.GroupSelfAdded {
			t.Fatalf("the creator's events %+v", own)
		}

		// Read: list and get, for the owner and a member.
		list := decode[struct{ Groups []wireGroup }](t, c.must(c.get("/v1/accounts/gbob/groups"), 200))
		if len(list.Groups) != 1 || list.Groups[0].JID != jid {
			t.Fatalf("bob's groups %+v", list)
		}
		// The group's user part alone names it too.
		if got := decode[wireGroup](t, c.must(c.get(groupPath("gowner", strings.TrimSuffix(jid, "@g.us"))), 200)); got.JID != jid {
			t.Fatalf("by user part: %+v", got)
		}

		// Info: any member edits an unlocked group; once locked, only admins.
		c.must(c.do("PATCH", groupPath("gbob", jid), "application/json", `{"description":"from bob"}`), 200)
		c.must(c.do("PATCH", groupPath("gowner", jid), "application/json", `{"locked":true}`), 200)
		forbidden := c.must(c.do("PATCH", groupPath("gbob", jid), "application/json", `{"subject":"Bob's"}`), 403).json(t)
		if forbidden["type"] != api.ProblemType+"not-group-admin" {
			t.Fatalf("locked: %v", forbidden)
		}
		r = c.must(c.do("PATCH", groupPath("gowner", jid), "application/json", `{"subject":"Team 2","description":"","announce":true,"joinApproval":false}`), 200)
		if g := decode[wireGroup](t, r); g.Name != "Team 2" || g.Topic != "" || !g.Announce || !g.Locked {
			t.Fatalf("after PATCH %s", r.body)
		}
		waitChatName(t, c, "gbob", jid, "Team 2")
		waitGroupEvent(t, rec, "gcarol", jid, "announce", func(u *event.GroupUpdate) bool { return u.Announce != nil && *u.Announce && u.Actor == owner })
		waitGroupEvent(t, rec, "gcarol", jid, "description removed", func(u *event.GroupUpdate) bool { return u.TopicDeleted })

		// Picture: set (a JPEG), then removed.
		pic := c.must(c.do("PUT", groupPath("gowner", jid, "/picture"), "application/json", fmt.Sprintf(`{"jpeg":%q}`, api.ExampleJPEG)), 200).json(t)
		pictureID, _ := pic["pictureId"].(string)
		if pictureID == "" {
			t.Fatalf("picture %v", pic)
		}
		waitGroupEvent(t, rec, "gbob", jid, "picture", func(u *event.GroupUpdate) bool { return u.PictureID == pictureID })
		c.must(c.do("DELETE", groupPath("gowner", jid, "/picture"), "", ""), 204)
		waitGroupEvent(t, rec, "gbob", jid, "picture removed", func(u *event.GroupUpdate) bool { return u.PictureRemoved })

		// Messages: announce-only, so the owner (an admin) speaks; every sim
		// member gets it from the owner in the group's chat. An outside
		// member's message injected into the group reaches them too.
		c.send("gowner", fmt.Sprintf(`{"to":%q,"text":"hello team"}`, jid))
		waitGroupMessage(t, c, "gbob", jid, owner, "hello team")
		waitGroupMessage(t, c, "gcarol", jid, owner, "hello team")
		c.must(c.post("/v1/accounts/gowner/sim/inbound", fmt.Sprintf(`{"from":"+15551230001","group":%q,"pushName":"Ann","text":"hi all"}`, jid)), 201)
		waitGroupMessage(t, c, "gowner", jid, ann, "hi all")
		waitGroupMessage(t, c, "gbob", jid, ann, "hi all")
		c.must(c.post("/v1/accounts/gowner/sim/inbound", fmt.Sprintf(`{"from":"+15550007777","group":%q,"text":"x"}`, jid)), 400)

		// Participants: per-participant results; members may not manage.
		res := decode[wireResults](t, c.must(c.post(groupPath("gowner", jid, "/participants"), `{"action":"remove","participants":["+15551230001","+15550009999"]}`), 200))
		if res.statuses() != "ok,not_in_group" || res.Results[0].JID != ann {
			t.Fatalf("remove %+v", res)
		}
		res = decode[wireResults](t, c.must(c.post(groupPath("gowner", jid, "/participants"), fmt.Sprintf(`{"action":"add","participants":["+15551230001",%q]}`, phoneOf("gbob"))), 200))
		if res.statuses() != "ok,already_in" {
			t.Fatalf("add %+v", res)
		}
		res = decode[wireResults](t, c.must(c.post(groupPath("gowner", jid, "/participants"), fmt.Sprintf(`{"action":"promote","participants":[%q]}`, bob)), 200))
		if res.statuses() != "ok" {
			t.Fatalf("promote %+v", res)
		}
		promoted := waitGroupEvent(t, rec, "gcarol", jid, "promote", func(u *event.GroupUpdate) bool { return slices.Contains(u.Promoted, bob) })
		if promoted.Actor != owner {
			t.Fatalf("promoted by %q", promoted.Actor)
		}
		res = decode[wireResults](t, c.must(c.post(groupPath("gbob", jid, "/participants"), fmt.Sprintf(`{"action":"demote","participants":[%q]}`, owner)), 200))
		if res.statuses() != "not_allowed" {
			t.Fatalf("an admin demotes the owner: %+v", res)
		}
		res = decode[wireResults](t, c.must(c.post(groupPath("gowner", jid, "/participants"), fmt.Sprintf(`{"action":"demote","participants":[%q]}`, bob)), 200))
		if res.statuses() != "ok" {
			t.Fatalf("demote %+v", res)
		}
		c.must(c.post(groupPath("gbob", jid, "/participants"), `{"action":"add","participants":["+15550001212"]}`), 403)

		// Invite links: admins only; a reset revokes the old code.
		c.must(c.get(groupPath("gbob", jid, "/invite-link")), 403)
		first := c.must(c.get(groupPath("gowner", jid, "/invite-link")), 200).json(t)
		if again := c.must(c.get(groupPath("gowner", jid, "/invite-link")), 200).json(t); again["link"] != first["link"] {
			t.Fatalf("the link changed without a reset: %v %v", first, again)
		}
		second := c.must(c.post(groupPath("gowner", jid, "/invite-link/reset"), ""), 200).json(t)
		if second["link"] == first["link"] || !strings.HasPrefix(second["link"].(string), "https://chat.whatsapp.com/") {
			t.Fatalf("reset: %v → %v", first, second)
		}
		old := c.must(c.get("/v1/accounts/gcarol/groups/invites/"+first["code"].(string)), 404).json(t)
		if old["field"] != "code" {
			t.Fatalf("revoked code: %v", old)
		}
		if p := decode[wireGroup](t, c.must(c.get("/v1/accounts/gcarol/groups/invites/"+second["code"].(string)), 200)); p.JID != jid || p.Name != "Team 2" {
			t.Fatalf("preview %+v", p)
		}

		// Leave and join again by link; then with approval: a request.
		c.must(c.post(groupPath("gcarol", jid, "/leave"), ""), 204)
		left := waitGroupEvent(t, rec, "gowner", jid, "carol left", func(u *event.GroupUpdate) bool { return slices.Contains(u.Left, carol) })
		if len(left.Removed) != 0 || left.Actor != carol {
			t.Fatalf("a leave reads as %+v", left)
		}
		waitGroupEvent(t, rec, "gcarol", jid, "self left", func(u *event.GroupUpdate) bool { return u.Self == event.GroupSelfLeft })
		c.must(c.get(groupPath("gcarol", jid)), 404)
		joined := c.must(c.post("/v1/accounts/gcarol/groups/join", fmt.Sprintf(`{"link":%q}`, second["link"])), 200).json(t)
		if joined["jid"] != jid || joined["requested"] != false {
			t.Fatalf("join %v", joined)
		}
		selfJoined := waitGroupEvent(t, rec, "gcarol", jid, "joined", func(u *event.GroupUpdate) bool { return u.Self == event.GroupSelfJoined })
		if selfJoined.JoinReason != sim.JoinReasonInvite || selfJoined.Info == nil || selfJoined.Info.Name != "Team 2" {
			t.Fatalf("joined event %+v", selfJoined)
		}
		c.must(c.do("PATCH", groupPath("gowner", jid), "application/json", `{"joinApproval":true}`), 200)
		c.must(c.post(groupPath("gcarol", jid, "/leave"), ""), 204)
		req := c.must(c.post("/v1/accounts/gcarol/groups/join", fmt.Sprintf(`{"link":%q}`, second["code"])), 202).json(t)
		if req["requested"] != true || req["jid"] != jid {
			t.Fatalf("join needing approval %v", req)
		}
		c.must(c.get(groupPath("gcarol", jid)), 404)
		reqs := decode[struct {
			Requests []struct {
				JID, PN     string
				RequestedAt time.Time
			}
		}](t, c.must(c.get(groupPath("gowner", jid, "/requests")), 200))
		if len(reqs.Requests) != 1 || reqs.Requests[0].JID != carol || reqs.Requests[0].RequestedAt.IsZero() {
			t.Fatalf("requests %+v", reqs)
		}
		res = decode[wireResults](t, c.must(c.post(groupPath("gowner", jid, "/requests"), fmt.Sprintf(`{"action":"approve","participants":[%q,"+15550004444"]}`, phoneOf("gcarol"))), 200))
		if res.statuses() != "ok,failed" {
			t.Fatalf("approve %+v", res)
		}
		c.must(c.get(groupPath("gcarol", jid)), 200)
		if reqs := c.must(c.get(groupPath("gowner", jid, "/requests")), 200).json(t); len(reqs["requests"].([]any)) != 0 {
			t.Fatalf("requests after approval %v", reqs)
		}

		// Removed, not left: bob hears he was removed.
		c.must(c.post(groupPath("gowner", jid, "/participants"), fmt.Sprintf(`{"action":"remove","participants":[%q]}`, bob)), 200)
		removed := waitGroupEvent(t, rec, "gbob", jid, "removed", func(u *event.GroupUpdate) bool { return u.Self == event.GroupSelfRemoved })
		if !slices.Contains(removed.Removed, bob) || len(removed.Left) != 0 || removed.Actor != owner {
			t.Fatalf("removal %+v", removed)
		}
		notFound := c.must(c.get(groupPath("gbob", jid)), 404).json(t)
		if notFound["field"] != "groupId" || notFound["type"] != api.ProblemType+"group-not-found" {
			t.Fatalf("removed member reads the group: %v", notFound)
		}

		// The group outlives a restart, on either engine.
		before := c.must(c.get(groupPath("gowner", jid)), 200).body
		if err := d1.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, c2 := accountsDaemon(t, cfg, -1, nil)
		c2.waitState("gowner", "connected")
		if after := c2.must(c2.get(groupPath("gowner", jid)), 200).body; string(after) != string(before) {
			t.Fatalf("after the restart\n%s\nwant\n%s", after, before)
		}
		if got := decode[wireGroup](t, c2.must(c2.get("/v1/accounts/gowner/groups/invites/"+second["code"].(string)), 200)); got.JID != jid {
			t.Fatalf("the invite code after the restart: %+v", got)
		}
		// The next group the owner creates is another one.
		if g2 := decode[wireGroup](t, c2.must(c2.post("/v1/accounts/gowner/groups", `{"subject":"Second","participants":["+15551230001"]}`), 201)); g2.JID == jid {
			t.Fatalf("a second group has the first's JID %s", jid)
		}
	})
}

// TestGroupRoutesRefuseBadInput: every refusal is a 4xx problem naming
// the field, and nothing reaches WhatsApp: the group and every member's
// events stay as they were.
func TestGroupRoutesRefuseBadInput(t *testing.T) {
	rec := &recorder{}
	_, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, rec)
	c.connectSim("bowner")
	c.connectSim("bmember")
	g := decode[wireGroup](t, c.must(c.post("/v1/accounts/bowner/groups", fmt.Sprintf(`{"subject":"Shop","participants":[%q]}`, phoneOf("bmember"))), 201))
	waitGroupEvent(t, rec, "bmember", g.JID, "added", func(u *event.GroupUpdate) bool { return u.Self == event.GroupSelfAdded })
	groupBefore := c.must(c.get(groupPath("bowner", g.JID)), 200).body
	eventsBefore := len(rec.matching(func(ev *event.Event) bool { return ev.Kind == event.KindGroupUpdate }))
	sentBefore := len(c.allMessages("bowner"))

	many := make([]string, 2000)
	for i := range many {
		many[i] = fmt.Sprintf("+1555%07d", i)
	}
	manyJSON, _ := json.Marshal(many)
	unknown := "120363000000000999@g.us"
	js := "application/json"
	long := strings.Repeat("é", 101)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		field                           string
	}{
		{"create: no subject", "POST", "/v1/accounts/bowner/groups", js, `{"participants":["+15551230001"]}`, 400, "subject"},
		{"create: blank subject", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"  ","participants":["+15551230001"]}`, 400, "subject"},
		{"create: subject over 100", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"` + long + `","participants":["+15551230001"]}`, 400, "subject"},
		{"create: no participants", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"x","participants":[]}`, 400, "participants"},
		{"create: 2000 participants", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"x","participants":` + string(manyJSON) + `}`, 400, "participants"},
		{"create: not a number", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"x","participants":["+15551230001","bob"]}`, 400, "participants[1]"},
		{"create: a group as participant", "POST", "/v1/accounts/bowner/groups", js, `{"subject":"x","participants":["120363000000000001@g.us"]}`, 400, "participants[0]"},
		{"create: unknown account", "POST", "/v1/accounts/nobody/groups", js, `{"subject":"x","participants":["+15551230001"]}`, 404, ""},
		{"get: unknown group", "GET", groupPath("bowner", unknown), "", "", 404, "groupId"},
		{"get: not a group JID", "GET", groupPath("bowner", "15551230001@s.whatsapp.net"), "", "", 400, "groupId"},
		{"get: garbage", "GET", groupPath("bowner", "abc"), "", "", 400, "groupId"},
		{"patch: unknown group", "PATCH", groupPath("bowner", unknown), js, `{"subject":"x"}`, 404, "groupId"},
		{"patch: nothing", "PATCH", groupPath("bowner", g.JID), js, `{}`, 400, "body"},
		{"patch: empty subject", "PATCH", groupPath("bowner", g.JID), js, `{"subject":""}`, 400, "subject"},
		{"patch: subject over 100", "PATCH", groupPath("bowner", g.JID), js, `{"subject":"` + long + `","announce":true}`, 400, "subject"},
		{"patch: description over 2048", "PATCH", groupPath("bowner", g.JID), js, `{"description":"` + strings.Repeat("d", 2049) + `"}`, 400, "description"},
		{"patch: unknown field", "PATCH", groupPath("bowner", g.JID), js, `{"name":"x"}`, 400, "name"},
		{"participants: unknown group", "POST", groupPath("bowner", unknown, "/participants"), js, `{"action":"add","participants":["+15551230001"]}`, 404, "groupId"},
		{"participants: bad action", "POST", groupPath("bowner", g.JID, "/participants"), js, `{"action":"kick","participants":["+15551230001"]}`, 400, "action"},
		{"participants: none", "POST", groupPath("bowner", g.JID, "/participants"), js, `{"action":"add","participants":[]}`, 400, "participants"},
		{"participants: 2000", "POST", groupPath("bowner", g.JID, "/participants"), js, `{"action":"add","participants":` + string(manyJSON) + `}`, 400, "participants"},
		{"participants: not a number", "POST", groupPath("bowner", g.JID, "/participants"), js, `{"action":"remove","participants":["12ab"]}`, 400, "participants[0]"},
		{"picture: not base64", "PUT", groupPath("bowner", g.JID, "/picture"), js, `{"jpeg":"%%%"}`, 400, "jpeg"},
		{"picture: not a JPEG", "PUT", groupPath("bowner", g.JID, "/picture"), js, `{"jpeg":"iVBORw0KGgo="}`, 400, "jpeg"},
		{"picture: unknown group", "DELETE", groupPath("bowner", unknown, "/picture"), "", "", 404, "groupId"},
		{"leave: unknown group", "POST", groupPath("bowner", unknown, "/leave"), "", "", 404, "groupId"},
		{"invite: unknown group", "GET", groupPath("bowner", unknown, "/invite-link"), "", "", 404, "groupId"},
		{"invite: not an admin", "POST", groupPath("bmember", g.JID, "/invite-link/reset"), "", "", 403, ""},
		{"preview: bad code", "GET", "/v1/accounts/bowner/groups/invites/a%21b", "", "", 400, "code"},
		{"preview: unknown code", "GET", "/v1/accounts/bowner/groups/invites/AAAAAAAAAAAAAAAAAAAAAA", "", "", 404, "code"},
		{"join: no link", "POST", "/v1/accounts/bmember/groups/join", js, `{}`, 400, "link"},
		{"join: bad link", "POST", "/v1/accounts/bmember/groups/join", js, `{"link":"https://example.com/x y"}`, 400, "link"},
		{"join: unknown code", "POST", "/v1/accounts/bmember/groups/join", js, `{"link":"https://chat.whatsapp.com/AAAAAAAAAAAAAAAAAAAAAA"}`, 404, "link"},
		{"requests: bad action", "POST", groupPath("bowner", g.JID, "/requests"), js, `{"action":"maybe","participants":["+15551230001"]}`, 400, "action"},
		{"requests: none", "POST", groupPath("bowner", g.JID, "/requests"), js, `{"action":"approve","participants":[]}`, 400, "participants"},
		{"requests: not an admin", "GET", groupPath("bmember", g.JID, "/requests"), "", "", 403, ""},
		{"send: unknown group", "POST", "/v1/accounts/bowner/sim/inbound", js, fmt.Sprintf(`{"from":%q,"group":%q,"text":"x"}`, phoneOf("bmember"), unknown), 404, "group"},
		{"inbound: not a group", "POST", "/v1/accounts/bowner/sim/inbound", js, `{"from":"+15551230001","group":"15551230001@s.whatsapp.net","text":"x"}`, 400, "group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(tc.method, tc.path, tc.ctype, tc.body)
			if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			if tc.field != "" {
				if f := r.json(t)["field"]; f != tc.field {
					t.Fatalf("field %v, want %s: %s", f, tc.field, r.body)
				}
			}
		})
	}
	if after := c.must(c.get(groupPath("bowner", g.JID)), 200).body; string(after) != string(groupBefore) {
		t.Fatalf("the group changed:\n%s\nwas\n%s", after, groupBefore)
	}
	if n := len(rec.matching(func(ev *event.Event) bool { return ev.Kind == event.KindGroupUpdate })); n != eventsBefore {
		t.Fatalf("%d group events after refused requests, %d before", n, eventsBefore)
	}
	if list := decode[struct{ Groups []wireGroup }](t, c.must(c.get("/v1/accounts/bowner/groups"), 200)); len(list.Groups) != 1 {
		t.Fatalf("groups after refused creates: %+v", list)
	}
	if n := len(c.allMessages("bowner")); n != sentBefore {
		t.Fatalf("%d messages after refused requests, %d before", n, sentBefore)
	}
}

// TestGroupRoutesHonourKeys: groups:read reads, groups:manage changes, and
// a key limited to an account reaches only that account's groups.
func TestGroupRoutesHonourKeys(t *testing.T) {
	_, c := accountsDaemon(t, accountsConfig(t), time.Millisecond, nil)
	c.connectSim("kowner")
	c.connectSim("kother")
	g := decode[wireGroup](t, c.must(c.post("/v1/accounts/kowner/groups", `{"subject":"Keys","participants":["+15551230001"]}`), 201))
	key := func(scopes string) *client {
		r := c.must(c.post("/v1/keys", fmt.Sprintf(`{"name":"g","scopes":[%s],"accounts":["kowner"]}`, scopes)), 201).json(t)
		return c.as(r["key"].(string))
	}
	reader, manager := key(`"groups:read"`), key(`"groups:manage"`)
	reader.must(reader.get("/v1/accounts/kowner/groups"), 200)
	reader.must(reader.get(groupPath("kowner", g.JID)), 200)
	reader.must(reader.get("/v1/accounts/kother/groups"), 403)
	reader.must(reader.do("PATCH", groupPath("kowner", g.JID), "application/json", `{"subject":"x"}`), 403)
	reader.must(reader.post(groupPath("kowner", g.JID, "/leave"), ""), 403)
	manager.must(manager.do("PATCH", groupPath("kowner", g.JID), "application/json", `{"subject":"By key"}`), 200)
	manager.must(manager.get("/v1/accounts/kowner/groups"), 403)
	manager.must(manager.post("/v1/accounts/kother/groups", `{"subject":"x","participants":["+15551230001"]}`), 403)
}

// TestGroupRoutesOnWhatsApp: the same routes drive a whatsapp account
// through the unmodified whatsmeow client and the protocol double: the
// group is made on the double, renamed there, a contact's group message
// arrives in the group's chat, and the chat carries the subject.
func TestGroupRoutesOnWhatsApp(t *testing.T) {
	wa := watest.New(t)
	rec := &recorder{}
	_, c := waDaemon(t, engineConfig(t, storetest.SQLite), wa, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.must(c.post("/v1/accounts", `{"id":"wshop","driver":"whatsapp"}`), 201)
	c.must(c.post("/v1/accounts/wshop/connect", ""), 202)
	c.waitState("wshop", "pairing")
	code, _ := c.must(c.get("/v1/accounts/wshop/qr"), 200).json(t)["code"].(string)
	if _, err := wa.ScanQR(ctx, code); err != nil {
		t.Fatal(err)
	}
	c.waitState("wshop", "connected")
	alice, bob := wa.Contact("15557770001"), wa.Contact("15557770002")

	g := decode[wireGroup](t, c.must(c.post("/v1/accounts/wshop/groups", `{"subject":"Shop team","participants":["+15557770001","15557770002@s.whatsapp.net"]}`), 201))
	if !strings.HasSuffix(g.JID, "@g.us") || g.Name != "Shop team" || len(g.Participants) != 3 {
		t.Fatalf("created %+v", g)
	}
	dg, err := wa.WaitGroup(ctx, "Shop team")
	if err != nil || dg.JID().String() != g.JID {
		t.Fatalf("the double's group: %v %v", dg, err)
	}
	c.must(c.do("PATCH", groupPath("wshop", g.JID), "application/json", `{"subject":"Shop team 2"}`), 200)
	if s := dg.Subject(); s != "Shop team 2" {
		t.Fatalf("the double's subject %q", s)
	}
	res := decode[wireResults](t, c.must(c.post(groupPath("wshop", g.JID, "/participants"), `{"action":"promote","participants":["+15557770002"]}`), 200))
	if res.statuses() != "ok" {
		t.Fatalf("promote %+v", res)
	}
	if got := decode[wireGroup](t, c.must(c.get(groupPath("wshop", g.JID)), 200)); got.role(bob.JID().String()) != "admin" {
		t.Fatalf("after the promotion %+v", got)
	}
	if _, err := alice.SendGroupText(ctx, dg.JID(), "hello shop"); err != nil {
		t.Fatal(err)
	}
	waitGroupMessage(t, c, "wshop", g.JID, alice.JID().String(), "hello shop")
	waitChatName(t, c, "wshop", g.JID, "Shop team 2")
	c.must(c.get(groupPath("wshop", "120363000000000999@g.us")), 404)

	// A poll sent over REST to the group reaches both contacts; their
	// votes, encrypted with the poll's secret, are decrypted by whatsmeow
	// and tallied on the stored poll.
	pollID := c.send("wshop", `{"to":"`+g.JID+`","poll":{"name":"Where?","options":["Here","There"]}}`)
	for _, v := range []struct {
		ct     *watest.Contact
		option string
	}{{alice, "Here"}, {bob, "There"}} {
		var poll *watest.ReceivedMessage
		for poll == nil || poll.ID != pollID {
			if poll, err = v.ct.NextMessage(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.ct.VotePoll(ctx, poll, v.option); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, time.Minute, func() error {
		p := c.pollMessage("wshop", pollID)
		if p.PollTally == nil || p.PollTally.Voters != 2 {
			return fmt.Errorf("tally %+v", p.PollTally)
		}
		for _, o := range p.PollTally.Options {
			want := alice.JID().String()
			if o.Name == "There" {
				want = bob.JID().String()
			}
			if o.Votes != 1 || len(o.Voters) != 1 || o.Voters[0] != want {
				return fmt.Errorf("option %+v, want one vote by %s", o, want)
			}
		}
		return nil
	})
}
