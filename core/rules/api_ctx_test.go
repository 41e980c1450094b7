package rules

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

func TestMessageEffects(t *testing.T) {
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG fake"))
	e, _ := newEngine(t, map[string]string{"a.js": `
on("message.received", (msg, ctx) => {
  ctx.reply("plain");
  ctx.reply({text: "quoted", quote: true, mentions: ["+1 555 000 2222"]});
  ctx.reply("options form", {quote: true});
  ctx.reply({media: {data: "` + png + `", mimetype: "image/png"}, caption: "look"});
  ctx.send("+49 (30) 1234-567", "to a number");
  ctx.send("120363025246125244@g.us", {location: {lat: 52.52, lng: 13.405, name: "Berlin"}});
  ctx.react("👍");
  ctx.markRead();
  ctx.tag("a", ["b", "c"]);
  ctx.annotate("score", 3);
  ctx.route("crm", "archive");
});`}, Options{})
	rec := &recorder{}
	ev := msgEvent("hi")
	effs, err := e.Handle(t.Context(), ev, rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"kind":"reply","text":"plain"},` +
		`{"kind":"reply","text":"quoted","quote":true,"mentions":["15550002222@s.whatsapp.net"]},` +
		`{"kind":"reply","text":"options form","quote":true},` +
		`{"kind":"reply","media":{"kind":"image","mimetype":"image/png","caption":"look","data":"` + png + `"}},` +
		`{"kind":"send","to":"49301234567@s.whatsapp.net","text":"to a number"},` +
		`{"kind":"send","to":"120363025246125244@g.us","location":{"lat":52.52,"lng":13.405,"name":"Berlin"}},` +
		`{"kind":"react","emoji":"👍"},{"kind":"markRead"},{"kind":"tag","tags":["a","b","c"]},` +
		`{"kind":"annotate","key":"score","value":"3"},{"kind":"route","sinks":["crm","archive"]}]`
	if got := effectsJSON(t, effs); got != want {
		t.Fatalf("effects\n got %s\nwant %s", got, want)
	}
	wantCalls := []string{"reply plain", "reply quoted", "reply options form", "reply ", "send 49301234567@s.whatsapp.net to a number",
		"send 120363025246125244@g.us ", "react 👍", "markRead", "tag a,b,c", "annotate score=3", "route crm,archive"}
	if strings.Join(rec.calls, "|") != strings.Join(wantCalls, "|") {
		t.Fatalf("live calls\n got %q\nwant %q", rec.calls, wantCalls)
	}
	for _, eff := range effs {
		if eff.Rule != "a" {
			t.Errorf("effect %s: rule %q, want a", eff.Kind, eff.Rule)
		}
	}

	// The requests are ready for the session: chat, source, quote.
	plain, quoted, media := effs[0].Message, effs[1].Message, effs[3].Message
	if plain.To != ev.ChatID || plain.Source != event.SourceRule || plain.ReplyTo != nil {
		t.Errorf("plain reply: %+v", plain)
	}
	if quoted.ReplyTo == nil || quoted.ReplyTo.MessageID != "3EB0AA" || quoted.ReplyTo.Sender != ev.Message.From {
		t.Errorf("quoted reply: %+v", quoted.ReplyTo)
	}
	if media.Media.Kind != session.MediaImage || string(media.Media.Data) != "\x89PNG fake" || media.Media.Caption != "look" {
		t.Errorf("media reply: %+v", media.Media)
	}
	react := effs[6].Message
	if react.Reaction == nil || react.Reaction.MessageID != "3EB0AA" || react.Reaction.Emoji != "👍" || react.To != ev.ChatID {
		t.Errorf("react request: %+v", react)
	}
}

func TestReactInGroupNamesTheSender(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => ctx.react("❤️"))`}, Options{})
	effs := mustHandle(t, e, groupEvent("x"))
	if r := effs[0].Message.Reaction; r.Sender != "98765432101234@lid" {
		t.Fatalf("group reaction sender %q", r.Sender)
	}
}

func TestMediaByReference(t *testing.T) {
	src := `on("message.received", (msg, ctx) => {
  ctx.reply({media: {url: "https://cdn.example.com/a.pdf", mimetype: "application/pdf", filename: "a.pdf"}});
  ctx.reply({media: {mediaId: "m123", kind: "voice"}});
});`
	// A dry run records what would be sent without loading it.
	e, _ := newEngine(t, map[string]string{"a.js": src}, Options{DryRun: true})
	effs := mustHandle(t, e, msgEvent("x"))
	want := `[{"kind":"reply","media":{"kind":"document","mimetype":"application/pdf","filename":"a.pdf","url":"https://cdn.example.com/a.pdf"}},` +
		`{"kind":"reply","media":{"kind":"voice","mediaId":"m123"}}]`
	if got := effectsJSON(t, effs); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if effs[0].Media == nil || effs[0].Media.URL == "" || effs[1].Media.MediaID != "m123" {
		t.Fatalf("unresolved references not recorded: %+v %+v", effs[0].Media, effs[1].Media)
	}

	// Live, a URL is fetched under the allow-list — refused here — and a
	// media id without a media store is refused.
	live, _ := newEngine(t, map[string]string{"a.js": src}, Options{})
	_, err := handle(t, live, msgEvent("x"))
	if err == nil || !strings.Contains(err.Error(), `host "cdn.example.com" is not allowed`) {
		t.Fatalf("live url media: %v", err)
	}
}

func TestSendValidation(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{`ctx.reply()`, "nothing to send"},
		{`ctx.reply({text: "a", media: {data: "", mimetype: "x"}})`, "exactly one of text, media"},
		{`ctx.reply({txt: "a"})`, `unknown key "txt"`},
		{`ctx.reply({text: "a", caption: "b"})`, "caption goes with media"},
		{`ctx.reply({media: {data: "AAAA"}})`, "needs a kind or a mimetype"},
		{`ctx.reply({media: {data: "AAAA", kind: "hologram"}})`, `media.kind "hologram"`},
		{`ctx.send("not a number!", "x")`, "neither a JID nor a phone number"},
		{`ctx.send("1@s.whatsapp.net", "x", {quote: true})`, "quote only works with ctx.reply"},
		{`ctx.react(1)`, "give an emoji"},
		{`ctx.tag()`, "at least one name"},
		{`ctx.tag([], [])`, "at least one name"},
		{`ctx.tag("a", [" "])`, "ctx.tag: empty name"},
		{`ctx.route({})`, "ctx.route: expected a string or a list of strings"},
		{`ctx.reply("a", {mentions: 5})`, "reply: mentions: expected a string or a list of strings"},
		{`ctx.annotate("k", {a: 1})`, "must be a string, number or boolean"},
		{`ctx.kv.set("k", undefined)`, "use ctx.kv.del"},
		{`ctx.kv.set("k", 1, {ttl: "soon"})`, "ttl must be a duration"},
		{`ctx.kv.get("")`, "empty key"},
		{`ctx.time.within("Mon-Fri 9-5")`, "bad schedule"},
		{`ctx.time.now("Mars/Olympus")`, "unknown time zone"},
		{`on("message.sent", () => {})`, "at the top level"},
	} {
		e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => { ` + tc.call + ` })`}, Options{})
		_, err := handle(t, e, msgEvent("x"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.call, err, tc.want)
		}
	}
}

func TestNonMessageEvents(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `on("account.*", (msg, ctx) => ctx.react("x"))`}, Options{})
	ev := &event.Event{ID: "acme:conn", Kind: event.KindAccountConnected, AccountID: "acme", Source: event.SourcePhone,
		Account: &event.AccountState{State: event.AccountConnected}}
	if _, err := handle(t, e, ev); err == nil || !strings.Contains(err.Error(), "has no message to react to") {
		t.Fatalf("react on an account event: %v", err)
	}
}

func TestDropStopsLaterRules(t *testing.T) {
	e, _ := newEngine(t, map[string]string{
		"10-first.js":  `on("message.received", (msg, ctx) => { ctx.tag("first"); ctx.drop(); ctx.drop() }); on("message.received", (msg, ctx) => ctx.tag("same-file-later"))`,
		"20-second.js": `on("message.received", (msg, ctx) => ctx.tag("second"))`,
	}, Options{})
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != `[{"kind":"tag","tags":["first"]},{"kind":"drop"}]` {
		t.Fatalf("after drop: %s", got)
	}
}

func TestRulesRunInFileNameOrderAndMatchKinds(t *testing.T) {
	e, _ := newEngine(t, map[string]string{
		"b.js": `on("message.*", (msg, ctx) => ctx.tag("b:" + msg.kind))`,
		"a.js": `on("message.received", (msg, ctx) => ctx.tag("a1")); on("message", (msg, ctx) => ctx.tag("a2")); on("account.connected", (msg, ctx) => ctx.tag("never"))`,
		"c.js": `on("message.sent", (msg, ctx) => ctx.tag("c"))`,
	}, Options{})
	got := effectsJSON(t, mustHandle(t, e, msgEvent("x")))
	if want := `[{"kind":"tag","tags":["a1"]},{"kind":"tag","tags":["a2"]},{"kind":"tag","tags":["b:message.received"]}]`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := New(Options{}).Handle(t.Context(), msgEvent("x"), nil); err != nil {
		t.Fatalf("no rules: %v", err)
	}
	bad := New(Options{Globs: []string{writeTemp(t, "bad.js", `on("mesage.received", () => {})`)}})
	if err := bad.Reload(); err == nil || !strings.Contains(err.Error(), `matches no kind`) && !strings.Contains(err.Error(), `unknown event kind`) {
		t.Fatalf("misspelt kind: %v", err)
	}
}

// msg is read-only: writes are ignored (a TypeError in strict mode).
func TestMsgIsReadOnly(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `
on("message.received", (msg, ctx) => {
  msg.kind = "changed";          // sloppy mode: ignored
  msg.message.text = "changed";
  try { msg.message.mentions.push("x"); } catch (e) { ctx.annotate("push", e.name); } // as on a frozen array
  delete msg.message.from;
  ctx.annotate("kind", msg.kind);
  ctx.annotate("text", msg.message.text);
  ctx.annotate("from", msg.message.from);
  ctx.annotate("same", msg.message === msg.message);
  ctx.annotate("mentions", msg.message.mentions.length + " " + Array.isArray(msg.message.mentions) + " " + msg.message.mentions.includes("1@s.whatsapp.net"));
  try { (() => { "use strict"; msg.message.text = "x"; })(); } catch (e) { ctx.annotate("strict", e.name); }
});`}, Options{})
	ev := msgEvent("original")
	ev.Message.Mentions = []string{"1@s.whatsapp.net"}
	got := effectsJSON(t, mustHandle(t, e, ev))
	want := `[{"kind":"annotate","key":"push","value":"TypeError"},` +
		`{"kind":"annotate","key":"kind","value":"message.received"},{"kind":"annotate","key":"text","value":"original"},` +
		`{"kind":"annotate","key":"from","value":"15550002222@s.whatsapp.net"},{"kind":"annotate","key":"same","value":"true"},` +
		`{"kind":"annotate","key":"mentions","value":"1 true true"},{"kind":"annotate","key":"strict","value":"TypeError"}]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if ev.Message.Text != "original" || len(ev.Message.Mentions) != 1 {
		t.Fatalf("the Go event changed: %+v", ev.Message)
	}
}

// msg is the event's JSON rendering: JSON.stringify(msg) is what
// json.Marshal makes of the Event, for every kind in core/event's fixtures.
func TestMsgIsTheJSONRendering(t *testing.T) {
	files, _ := filepath.Glob("../event/testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no event fixtures")
	}
	e, _ := newEngine(t, map[string]string{"a.js": `on("*", (msg, ctx) => {
  ctx.annotate("json", JSON.stringify(msg));
  ctx.annotate("keys", Object.keys(msg).join(","));
  ctx.annotate("absent", String(msg.nope) + " " + ("nope" in msg));
});`}, Options{})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev event.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		effs := mustHandle(t, e, &ev)
		want, _ := json.Marshal(&ev)
		var a, b any
		_ = json.Unmarshal(want, &a)
		if err := json.Unmarshal([]byte(effs[0].Value), &b); err != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: JSON.stringify(msg)\n%s\nwant\n%s", filepath.Base(f), effs[0].Value, want)
		}
		var top map[string]json.RawMessage
		_ = json.Unmarshal(want, &top)
		if keys := strings.Split(effs[1].Value, ","); len(keys) != len(top) {
			t.Errorf("%s: Object.keys(msg) = %v, JSON has %d keys", filepath.Base(f), keys, len(top))
		}
		if effs[2].Value != "undefined false" {
			t.Errorf("%s: absent key: %s", filepath.Base(f), effs[2].Value)
		}
	}
}

func TestSandbox(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `
on("message.received", (msg, ctx) => {
  ctx.annotate("require", typeof require);
  ctx.annotate("process", typeof process);
  ctx.annotate("fetch", typeof fetch);
  ctx.annotate("setTimeout", typeof setTimeout);
});`}, Options{})
	got := effectsJSON(t, mustHandle(t, e, msgEvent("x")))
	for _, name := range []string{"require", "process", "fetch", "setTimeout"} {
		if !strings.Contains(got, `"key":"`+name+`","value":"undefined"`) {
			t.Errorf("%s is reachable from a rule: %s", name, got)
		}
	}
}

func TestConfigSelfAndLog(t *testing.T) {
	logs := &logBuffer{}
	e, _ := newEngine(t, map[string]string{"greet.js": `on("message.received", (msg, ctx) => {
  ctx.annotate("greeting", ctx.config.greeting);
  ctx.annotate("nested", ctx.config.nested.list[1]);
  ctx.annotate("rule", ctx.rule);
  const self = ctx.self();
  ctx.annotate("self", self.id + " " + self.jids.join(","));
  ctx.log.info("hello", {n: 1});
  console.log("from console");
  ctx.log.warn("careful");
  ctx.log.error("bad");
});`}, Options{
		Config: map[string]map[string]any{"greet": {"greeting": "hej", "nested": map[string]any{"list": []any{"a", "b"}}}},
		Self:   func(acct string) []string { return []string{acct + "-pn", acct + "-lid"} },
		Logger: logs.logger(),
	})
	got := effectsJSON(t, mustHandle(t, e, msgEvent("x")))
	want := `[{"kind":"annotate","key":"greeting","value":"hej"},{"kind":"annotate","key":"nested","value":"b"},` +
		`{"kind":"annotate","key":"rule","value":"greet"},{"kind":"annotate","key":"self","value":"acme acme-pn,acme-lid"}]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for msg, level := range map[string]string{`hello {"n":1}`: "INFO", "from console": "INFO", "careful": "WARN", "bad": "ERROR"} {
		recs := logs.records(msg)
		if len(recs) != 1 {
			t.Errorf("log %q: %d records", msg, len(recs))
			continue
		}
		r := recs[0]
		if r["level"] != level || r["rule"] != "greet" || !strings.HasSuffix(r["file"].(string), "greet.js") || r["line"].(float64) < 6 || r["event_id"] != "acme:3EB0AA" {
			t.Errorf("log %q: %v", msg, r)
		}
	}
}

func TestTimeFunctions(t *testing.T) {
	// Wednesday 2026-01-07 17:30 UTC = 18:30 in Berlin.
	e, _ := newEngine(t, map[string]string{"a.js": `on("message.received", (msg, ctx) => {
  const b = ctx.time.now("Europe/Berlin");
  ctx.annotate("berlin", [b.iso, b.date, b.weekday, b.hour, b.minute].join(" "));
  ctx.annotate("default", ctx.time.now().iso);
  ctx.annotate("open-berlin", ctx.time.within("Mon-Fri 09:00-18:00", "Europe/Berlin"));
  ctx.annotate("open-default", ctx.time.within("Mon-Fri 09:00-18:00"));
  ctx.annotate("split", ctx.time.within("Mon-Fri 09:00-12:00,13:00-18:30; Sat 10:00-14:00", "Europe/Berlin"));
});`}, Options{
		Now:    fixedClock("2026-01-07T17:30:00Z"),
		Config: map[string]map[string]any{"a": {"timezone": "America/New_York"}},
	})
	got := effectsJSON(t, mustHandle(t, e, msgEvent("x")))
	want := `[{"kind":"annotate","key":"berlin","value":"2026-01-07T18:30:00+01:00 2026-01-07 Wed 18 30"},` +
		`{"kind":"annotate","key":"default","value":"2026-01-07T12:30:00-05:00"},` +
		`{"kind":"annotate","key":"open-berlin","value":"false"},{"kind":"annotate","key":"open-default","value":"true"},` +
		`{"kind":"annotate","key":"split","value":"false"}]`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func writeTemp(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	writeRules(t, dir, map[string]string{name: src})
	return dir + "/" + name
}

// TestGroupLookup: ctx.group() is the event's group as the engine's Group
// answers it, null outside groups; a failed lookup throws (naming
// ctx.group), and an engine without access to groups throws too.
func TestGroupLookup(t *testing.T) {
	rule := map[string]string{"g.js": `on("message.received", (msg, ctx) => {
  const g = ctx.group();
  if (g === null) { ctx.annotate("group", "none"); return; }
  ctx.annotate("group", g.name + " " + g.participants.filter((p) => p.role !== "member").map((p) => p.jid).join(","));
});`}
	var asked []string
	e, _ := newEngine(t, rule, Options{Group: func(_ context.Context, acct, jid string) (*event.GroupInfo, error) {
		asked = append(asked, acct+" "+jid)
		if jid != "120363025246125244@g.us" {
			return nil, errors.New("not in it")
		}
		return &event.GroupInfo{JID: jid, Name: "Support", Participants: []event.GroupParticipant{
			{JID: "1@s.whatsapp.net", Role: event.GroupSuperAdmin}, {JID: "2@s.whatsapp.net", Role: event.GroupMember}, {JID: "3@lid", Role: event.GroupAdmin}}}, nil
	}})
	if got := effectsJSON(t, mustHandle(t, e, groupEvent("x"))); got != `[{"kind":"annotate","key":"group","value":"Support 1@s.whatsapp.net,3@lid"}]` {
		t.Fatalf("in a group: %s", got)
	}
	if got := effectsJSON(t, mustHandle(t, e, msgEvent("x"))); got != `[{"kind":"annotate","key":"group","value":"none"}]` {
		t.Fatalf("in a direct chat: %s", got)
	}
	if fmt.Sprint(asked) != "[acme 120363025246125244@g.us]" {
		t.Fatalf("lookups %v", asked)
	}
	other := groupEvent("x")
	other.ChatID, other.Message.ChatID = "120363000000000001@g.us", "120363000000000001@g.us"
	if _, err := e.Handle(context.Background(), other, nil); err == nil || !strings.Contains(err.Error(), "ctx.group: not in it") {
		t.Fatalf("failed lookup: %v", err)
	}
	bare, _ := newEngine(t, rule, Options{})
	if _, err := bare.Handle(context.Background(), groupEvent("x"), nil); err == nil || !strings.Contains(err.Error(), "no access to groups") {
		t.Fatalf("without Group: %v", err)
	}
}

// TestRulesSendPolls: ctx.send and ctx.reply take a poll like the REST
// send; its checks (outgoing.CheckPoll) apply when it is sent.
func TestRulesSendPolls(t *testing.T) {
	e, _ := newEngine(t, map[string]string{"a.js": `
on("message.received", (msg, ctx) => {
  ctx.reply({poll: {name: "Lunch?", options: ["Pizza", "Sushi"], selectableCount: 1}});
  ctx.send("120363025246125244@g.us", {poll: {name: "Colour?", options: ["Red", "Blue", "Green"]}});
});`}, Options{})
	effs, err := e.Handle(t.Context(), msgEvent("hi"), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"kind":"reply","poll":{"name":"Lunch?","options":["Pizza","Sushi"],"selectableCount":1}},` +
		`{"kind":"send","to":"120363025246125244@g.us","poll":{"name":"Colour?","options":["Red","Blue","Green"]}}]`
	if got := effectsJSON(t, effs); got != want {
		t.Fatalf("effects\n got %s\nwant %s", got, want)
	}
	for _, eff := range effs {
		if p := eff.Message.Poll; p == nil || eff.Message.Text != "" {
			t.Fatalf("%s: message %+v", eff.Kind, eff.Message)
		}
	}
}
