//go:build browser

// Browser tests: Debian's chromium, driven by chromedp, against a real
// daemon on the sim driver. Run them with `make test-browser`, which also
// fetches axe-core for the accessibility check (WILDCAT_AXE_JS).
package dashboard_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// chromiumPath finds Debian's chromium; without it the tests fail, saying so.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("WILDCAT_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	// Asked for by name (make test-browser), they must not pass unrun.
	t.Fatal("chromium is not installed: the browser tests need Debian's chromium package (.ci/run installs it)")
	return ""
}

// axeSource is axe-core's axe.min.js, which make test-browser fetches.
func axeSource(t *testing.T) string {
	p := os.Getenv("WILDCAT_AXE_JS")
	if p == "" {
		t.Fatal("WILDCAT_AXE_JS is not set: run the browser tests with make test-browser, which fetches axe-core")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	return string(b)
}

// env is one daemon and one browser tab.
type env struct {
	t      *testing.T
	d      *daemon.Daemon
	base   string
	ctx    context.Context
	axe    string
	shots  string
	hook   *failingHook
	pages  map[string]bool // pages checked by axe
	client *http.Client
}

type failingHook struct {
	*httptest.Server
	fail  atomic.Bool
	calls atomic.Int64
}

func newFailingHook(t *testing.T) *failingHook {
	h := &failingHook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h.calls.Add(1)
		if h.fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "receiver says no: upstream down")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

func setup(t *testing.T) *env {
	chrome := chromiumPath(t)
	axe := axeSource(t)

	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "urgent-tagger.js"), []byte(`
on("message.received", (msg, ctx) => {
  if ((msg.message.text || "").includes("urgent")) ctx.tag("urgent");
});
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "webhook")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/webhook").CombinedOutput(); err != nil {
		t.Fatalf("build the webhook plugin: %v\n%s", err, out)
	}

	cfg := config.Defaults()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.HTTP.AdminKey = apikeystest.AdminToken
	cfg.HTTP.AuthSecret = apikeystest.ServerSecret
	cfg.Plugins = map[string]pluginhost.Config{"webhook": {Path: bin, Timeout: 30 * time.Second}}
	recv := pipeline.Match{Kinds: []string{"message.received"}}
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "rules", Rules: []string{filepath.Join(rules, "*.js")}, Match: recv, Timeout: 30 * time.Second},
		{Name: "hooks", Sink: webhooks.SinkName},
	}
	cfg.Webhooks.AllowPrivateTargets = true
	cfg.Webhooks.SyncInterval = 50 * time.Millisecond
	d, err := daemon.New(cfg, daemon.Options{
		NoSignals: true,
		// The phone never scans by itself: the test scans the QR code it
		// reads off the page. Codes rotate every second so the page is seen
		// following them.
		Sim: sim.Options{QRInterval: time.Second, PairDelay: -1,
			DeliveredDelay: 50 * time.Millisecond, ReadDelay: 100 * time.Millisecond, ReconnectDelay: time.Millisecond},
		// A few quick tries, then the dead-letter queue.
		OutboxSchedule: &outbox.Schedule{Delays: []time.Duration{50 * time.Millisecond}, Every: 50 * time.Millisecond, MaxAge: 300 * time.Millisecond, MaxRetryAfter: time.Second},
		OutboxPoll:     20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}

	shots := filepath.Join(os.TempDir(), "wildcat-browser-artifacts", t.Name())
	if dir := os.Getenv("WILDCAT_BROWSER_ARTIFACTS"); dir != "" {
		shots = filepath.Join(dir, t.Name())
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(390, 844), // a phone's width
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// Start the browser on the long-lived context: steps run on children
	// with deadlines, and the first Run's context owns the browser.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	e := &env{t: t, d: d, base: "http://" + d.Addr(), ctx: ctx, axe: axe, shots: shots, pages: map[string]bool{},
		client: &http.Client{Timeout: 30 * time.Second}}
	// Console errors of the page are test output.
	chromedp.ListenTarget(ctx, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Logf("page exception: %s", ev.ExceptionDetails.Error())
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			e.screenshot("failure")
		}
	})
	return e
}

// screenshot saves the page as a PNG artifact and prints where.
func (e *env) screenshot(name string) {
	var png []byte
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		e.t.Logf("screenshot %s: %v", name, err)
		return
	}
	_ = os.MkdirAll(e.shots, 0o755)
	p := filepath.Join(e.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		e.t.Logf("screenshot %s: %v", name, err)
		return
	}
	e.t.Logf("screenshot saved: %s", p)
	var status string
	if chromedp.Run(ctx, chromedp.Text("#status", &status, chromedp.ByID)) == nil && status != "" {
		e.t.Logf("the page's status line: %s", status)
	}
}

// run runs browser actions, each call bounded so a missing element fails
// the test with its step's name instead of hanging it.
func (e *env) run(what string, actions ...chromedp.Action) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// api calls the REST API with the admin key (test setup and the sim's
// "phone", never what the page shows).
func (e *env) api(method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+apikeystest.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

// open goes to a dashboard route and waits until the page has loaded it.
func (e *env) open(hash string) {
	e.t.Helper()
	// A hash change, not a navigation: the page keeps its tab's session.
	e.run("open "+hash, chromedp.Evaluate(fmt.Sprintf(`(() => {
		document.getElementById("main").dataset.ready = "";
		if (location.hash === %[1]q) dispatchEvent(new HashChangeEvent("hashchange")); else location.hash = %[1]q;
	})()`, hash), nil), e.ready(hash))
}

func (e *env) ready(hash string) chromedp.Action {
	return chromedp.WaitVisible(fmt.Sprintf(`main[data-ready=%q]`, hash), chromedp.ByQuery)
}

// checkA11y runs axe-core in the page and fails on serious or critical
// violations.
func (e *env) checkA11y(name string) {
	e.t.Helper()
	var res struct {
		Violations []struct {
			ID, Impact, Help string
			Nodes            []struct{ Target []any }
		}
	}
	inject := chromedp.ActionFunc(func(ctx context.Context) error {
		_, exc, err := runtime.Evaluate(e.axe).Do(ctx)
		if err != nil {
			return err
		}
		if exc != nil {
			return fmt.Errorf("axe-core: %s", exc.Error())
		}
		return nil
	})
	e.run("axe on "+name, inject, chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => ({violations: r.violations}))`, &res,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	e.pages[name] = true
	// A phone's width: the page itself never scrolls sideways (wide tables
	// scroll inside their own focusable region).
	var wide struct{ Scroll, Inner int }
	e.run("width of "+name, chromedp.Evaluate(`({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})`, &wide))
	if wide.Scroll > wide.Inner {
		e.t.Errorf("%s page is %d px wide in a %d px window", name, wide.Scroll, wide.Inner)
	}
	if os.Getenv("WILDCAT_BROWSER_SCREENSHOTS") != "" { // every page, to look at
		e.screenshot("page-" + strings.ReplaceAll(name, " ", "-"))
	}
	for _, v := range res.Violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			e.t.Errorf("accessibility (%s) on %s: %s — %s at %v", v.Impact, name, v.ID, v.Help, v.Nodes)
		}
	}
}

// waitText polls until the element's text satisfies ok (the page updates
// from its event stream).
func (e *env) waitText(sel string, ok func(string) bool, what string) string {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var txt string
		var nodes int
		err := chromedp.Run(e.ctx, chromedp.Evaluate(fmt.Sprintf(`(() => { const n = document.querySelectorAll(%q); return n.length ? n[0].textContent : ""; })()`, sel), &txt),
			chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &nodes))
		if err != nil {
			e.t.Fatalf("%s: %v", what, err)
		}
		last = txt
		if nodes > 0 && ok(txt) {
			return txt
		}
	}
	e.t.Fatalf("%s: %q never matched", what, last)
	return ""
}

// readQR takes the QR image off the page (drawn to a canvas in the page)
// and decodes it: what a phone's camera would read.
func (e *env) readQR() string {
	e.t.Helper()
	var dataURL string
	e.run("read the QR image", chromedp.Evaluate(`(() => {
		const img = document.getElementById("qr-img");
		if (!img || !img.complete || !img.naturalWidth) return "";
		const c = document.createElement("canvas");
		c.width = img.naturalWidth; c.height = img.naturalHeight;
		c.getContext("2d").drawImage(img, 0, 0);
		return c.toDataURL("image/png");
	})()`, &dataURL))
	if dataURL == "" {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
	if err != nil {
		e.t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		e.t.Fatalf("QR image: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		e.t.Fatal(err)
	}
	// The picture is the bare code (a PNG drawn by the daemon), not a
	// photo of it.
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		e.t.Fatalf("the page's QR code does not decode: %v", err)
	}
	return res.GetText()
}

func TestDashboardInBrowser(t *testing.T) {
	e := setup(t)
	hook := newFailingHook(t)
	e.hook = hook

	// The login page: the key is typed in, never put in the URL.
	e.run("login page", chromedp.Navigate(e.base+"/ui/"), e.ready("#/login"))
	e.checkA11y("login")
	e.run("sign in", chromedp.SendKeys("#key", apikeystest.AdminToken, chromedp.ByID), chromedp.Click(`#main form button[type="submit"]`, chromedp.ByQuery),
		e.ready("#/accounts"), chromedp.WaitVisible("#accounts", chromedp.ByID))
	var loc string
	e.run("location", chromedp.Location(&loc))
	if strings.Contains(loc, "wck_") {
		t.Fatalf("the key is in the URL: %s", loc)
	}

	e.step(t, "keyboard: skip link", e.keyboard)
	e.step(t, "pair from the QR code on the page", e.pair)
	e.step(t, "chat paging, reply read, attachment", e.chat)
	e.step(t, "message trace shows the rule's tag", e.trace)
	e.step(t, "failing webhook, attempts, replay", e.webhook)
	e.step(t, "pipeline, rules and plugins, live events", e.others)
	for _, p := range []string{"login", "accounts", "pairing", "chats", "chat", "message", "deliveries", "deliveries with attempts and dead letters", "pipeline", "plugins", "events"} {
		if !e.pages[p] {
			t.Errorf("axe-core did not check the %s page", p)
		}
	}
}

// step runs one part as a subtest; a failing one leaves a screenshot of
// the page as it was.
func (e *env) step(t *testing.T, name string, fn func()) {
	t.Run(name, func(t *testing.T) {
		parent := e.t
		e.t = t
		defer func() { e.t = parent }()
		defer func() {
			if t.Failed() {
				e.screenshot(strings.NewReplacer(" ", "-", ",", "", "'", "").Replace(name))
			}
		}()
		fn()
	})
}

// keyboard: the first Tab reaches the skip link, Enter puts the focus on
// the page's content, the next Tab its first control; the route stays.
func (e *env) keyboard() {
	var first, after, next, hash string
	e.run("reload", chromedp.Reload(), e.ready("#/accounts"))
	e.run("tab", chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.textContent`, &first),
		chromedp.KeyEvent("\r"), chromedp.Evaluate(`document.activeElement.id`, &after),
		chromedp.KeyEvent("\t"), chromedp.Evaluate(`document.activeElement.id`, &next),
		chromedp.Evaluate(`location.hash`, &hash))
	if first != "Skip to content" || after != "main" || next != "new-id" || hash != "#/accounts" {
		e.t.Fatalf("keyboard: first Tab on %q, Enter focused %q, next Tab %q, route %q", first, after, next, hash)
	}
}

func (e *env) pair() {
	e.run("create an account", chromedp.SendKeys("#new-id", "phone1", chromedp.ByID),
		chromedp.SetValue("#new-driver", "sim", chromedp.ByID), chromedp.Click(`form[aria-label="Create an account"] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-id="phone1"]`, chromedp.ByQuery))
	e.checkA11y("accounts")
	e.run("connect", chromedp.Click(`button[aria-label="Connect phone1"]`, chromedp.ByQuery), chromedp.WaitVisible("#qr-img", chromedp.ByID))

	// The picture follows the rotating code: two different codes are read
	// off the page, each the one the daemon shows at that moment.
	var first string
	for deadline := time.Now().Add(30 * time.Second); first == ""; {
		if time.Now().After(deadline) {
			e.t.Fatal("no QR code on the page")
		}
		first = e.readQR()
	}
	cur := e.api("GET", "/v1/accounts/phone1/qr", nil)["code"]
	second := first
	deadline := time.Now().Add(30 * time.Second)
	for second == first && time.Now().Before(deadline) {
		if got := e.readQR(); got != "" {
			second = got
		}
	}
	if second == first {
		e.t.Fatalf("the QR code on the page never changed from %q", first)
	}
	e.checkA11y("pairing")
	if cur != first && cur != second {
		// The daemon may have rotated once more; what matters is that the
		// page shows the daemon's codes, checked again right before the scan.
		e.t.Logf("daemon's code %v while the page showed %q then %q", cur, first, second)
	}
	// "Scan": the phone confirms the code it read, if it is the current one.
	deadline = time.Now().Add(30 * time.Second)
	for {
		read := e.readQR()
		if read != "" && read == e.api("GET", "/v1/accounts/phone1/qr", nil)["code"] {
			if err := e.d.Sim().Scan("phone1"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the page's QR code never matched the daemon's current one")
		}
	}
	e.waitText(`tr[data-id="phone1"] .state`, func(s string) bool { return s == "connected" }, "account state on the page")
}

func (e *env) chat() {
	const n = 500
	base := time.Now().Add(-time.Hour).Unix()
	for i := range n {
		e.api("POST", "/v1/accounts/phone1/sim/inbound", map[string]any{"from": "+15550001111", "pushName": "Ann",
			"id": fmt.Sprintf("IN%04d", i), "text": fmt.Sprintf("history %d", i), "timestamp": base + int64(i)})
	}
	chat := "15550001111@s.whatsapp.net"
	e.open("#/accounts/phone1/chats")
	e.checkA11y("chats")
	e.run("open the chat", chromedp.Click(`#chats a`, chromedp.ByQuery), e.ready("#/accounts/phone1/chats/"+chat))
	e.checkA11y("chat")
	count := func() int {
		var c int
		e.run("count", chromedp.Evaluate(`document.querySelectorAll("#messages > li").length`, &c))
		return c
	}
	if c := count(); c != 50 {
		e.t.Fatalf("first page shows %d messages, want 50 (a page, not the chat)", c)
	}
	var newest string
	e.run("newest", chromedp.Text(`#messages > li .msg-text`, &newest, chromedp.ByQuery))
	if newest != "history 499" {
		e.t.Fatalf("newest first: top is %q", newest)
	}
	for pages := 1; ; pages++ {
		var hidden bool
		e.run("older?", chromedp.Evaluate(`document.getElementById("older").hidden`, &hidden))
		if hidden {
			break
		}
		want := min(50*(pages+1), n)
		e.run("page back", chromedp.Click("#older", chromedp.ByID),
			chromedp.WaitVisible(fmt.Sprintf(`#messages > li:nth-child(%d)`, want), chromedp.ByQuery))
		if pages > 20 {
			e.t.Fatal("paging never ends")
		}
	}
	if c := count(); c != n {
		e.t.Fatalf("after paging back: %d messages, want %d", c, n)
	}
	var oldest string
	e.run("oldest", chromedp.Text(`#messages > li:last-child .msg-text`, &oldest, chromedp.ByQuery))
	if oldest != "history 0" {
		e.t.Fatalf("oldest is %q", oldest)
	}

	// Reply to the newest message; the page follows the status to read.
	e.run("reply", chromedp.Click(`#messages > li:first-child button`, chromedp.ByQuery),
		chromedp.WaitVisible("#replying button", chromedp.ByQuery),
		chromedp.SendKeys("#send-text", "on my way", chromedp.ByID),
		chromedp.Click(`#send button[type="submit"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#messages > li.mine`, chromedp.ByQuery))
	var quoted string
	e.run("quoted", chromedp.Text(`#messages > li.mine .msg-text`, &quoted, chromedp.ByQuery))
	if quoted != "on my way" {
		e.t.Fatalf("sent message shows %q", quoted)
	}
	e.waitText(`#messages > li.mine .msg-status`, func(s string) bool { return s == "read" }, "status of the reply")
	var id string
	e.run("sent id", chromedp.Evaluate(`document.querySelector("#messages > li.mine").dataset.id`, &id))
	if m := e.api("GET", "/v1/accounts/phone1/messages/"+id, nil); m["quoted"] == nil {
		e.t.Fatalf("the reply was sent without its quote: %v", m)
	}

	// An attachment: uploaded from the page, sent, previewed from the
	// media route with the key.
	pic := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range pic.Pix {
		pic.Pix[i] = 0xff
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, pic); err != nil {
		e.t.Fatal(err)
	}
	file := filepath.Join(e.t.TempDir(), "white.png")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.run("attach", chromedp.SetUploadFiles("#send-file", []string{file}, chromedp.ByID),
		chromedp.SendKeys("#send-text", "a picture", chromedp.ByID),
		chromedp.Click(`#send button[type="submit"]`, chromedp.ByQuery))
	e.waitText(`#messages > li:first-child .msg-text`, func(s string) bool { return s == "a picture" }, "the sent picture")
	var w int
	e.run("preview", chromedp.Click(`#messages > li:first-child button.preview-media`, chromedp.ByQuery),
		chromedp.WaitVisible(`#messages > li:first-child img.preview`, chromedp.ByQuery),
		chromedp.Poll(`(() => { const i = document.querySelector("#messages > li:first-child img.preview"); return i && i.complete && i.naturalWidth; })()`, &w))
	if w != 8 {
		e.t.Fatalf("preview is %d pixels wide, want 8", w)
	}
}

func (e *env) trace() {
	e.api("POST", "/v1/accounts/phone1/sim/inbound", map[string]any{"from": "+15550002222", "pushName": "Bo", "id": "URGENT1", "text": "this is urgent"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := e.api("GET", "/v1/accounts/phone1/messages/URGENT1", nil)
		if tags, _ := m["tags"].([]any); len(tags) > 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the rule never tagged the message")
		}
	}
	e.open("#/pipeline")
	e.checkA11y("pipeline")
	e.run("trace form", chromedp.SendKeys("#trace-account", "phone1", chromedp.ByID), chromedp.SendKeys("#trace-message", "URGENT1", chromedp.ByID),
		chromedp.Click(`#trace-message ~ button, form:has(#trace-message) button[type="submit"]`, chromedp.ByQuery), e.ready("#/accounts/phone1/messages/URGENT1"))
	e.checkA11y("message")
	var tags, trace string
	e.run("tags", chromedp.Text("#tags", &tags, chromedp.ByID), chromedp.Text("#trace", &trace, chromedp.ByID))
	if !strings.Contains(tags, "urgent") {
		e.t.Fatalf("message page shows tags %q", tags)
	}
	// Once the trace route answers, the page shows which rule did it.
	req, _ := http.NewRequest("GET", e.base+"/v1/accounts/phone1/messages/URGENT1/trace", nil)
	req.Header.Set("Authorization", "Bearer "+apikeystest.AdminToken)
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 && !strings.Contains(trace, "tag by urgent-tagger") {
			e.t.Fatalf("the trace on the page does not name the rule: %q", trace)
		}
	}
}

func (e *env) webhook() {
	e.hook.fail.Store(true)
	e.open("#/deliveries")
	e.checkA11y("deliveries")
	e.run("register", chromedp.SendKeys("#hook-id", "crm", chromedp.ByID), chromedp.SendKeys("#hook-url", e.hook.URL, chromedp.ByID),
		chromedp.Click(`form[aria-label="Register a webhook"] button[type="submit"]`, chromedp.ByQuery), chromedp.WaitVisible(`#webhooks .card[data-id="crm"]`, chromedp.ByQuery))
	// Wait until the webhook plugin knows the endpoint, then a message
	// fails twice and is dead-lettered.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		e.api("POST", "/v1/accounts/phone1/sim/inbound", map[string]any{"from": "+15550003333", "text": fmt.Sprintf("hook %d", i)})
		poll := time.Now().Add(5 * time.Second)
		dead := 0
		for time.Now().Before(poll) && dead == 0 {
			r := e.api("GET", "/v1/deliveries?state=deadletter&sink=webhook:crm", nil)
			ds, _ := r["deliveries"].([]any)
			dead = len(ds)
		}
		if dead > 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatal("no dead letter for the failing webhook")
		}
	}
	e.open("#/deliveries")
	e.run("attempts", chromedp.Click(`button[aria-label="Show attempts crm"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.hook-attempts ol.attempts li`, chromedp.ByQuery))
	var attempts, stats string
	e.run("attempt text", chromedp.Text(`.card[data-id="crm"] .hook-attempts`, &attempts, chromedp.ByQuery),
		chromedp.Text(`.card[data-id="crm"] .hook-stats`, &stats, chromedp.ByQuery))
	if !strings.Contains(attempts, "HTTP 502") || !strings.Contains(attempts, "receiver says no") {
		e.t.Fatalf("attempts on the page: %q", attempts)
	}
	if !strings.Contains(stats, "0% of") {
		e.t.Fatalf("endpoint stats: %q", stats)
	}
	e.checkA11y("deliveries with attempts and dead letters")

	// The receiver recovers; replaying the dead letter from the page
	// delivers it.
	e.hook.fail.Store(false)
	before := e.hook.calls.Load()
	var job string
	e.run("dead letter on the page", chromedp.Evaluate(`document.querySelector('#dead-letters li.job[data-state="deadletter"]').dataset.id`, &job))
	e.run("replay", chromedp.Click(fmt.Sprintf(`#dead-letters li.job[data-id=%q] button`, job), chromedp.ByQuery))
	deadline = time.Now().Add(30 * time.Second)
	for {
		if e.api("GET", "/v1/deliveries/"+url.PathEscape(job), nil)["state"] == "done" {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the replayed job %s was never delivered", job)
		}
	}
	if e.hook.calls.Load() <= before {
		e.t.Fatal("the receiver got nothing after the replay")
	}
	e.open("#/deliveries")
	e.run("attempts again", chromedp.Click(`button[aria-label="Show attempts crm"]`, chromedp.ByQuery),
		chromedp.WaitVisible(fmt.Sprintf(`.hook-attempts li.job[data-id=%q][data-state="done"]`, job), chromedp.ByQuery))
}

func (e *env) others() {
	e.open("#/plugins")
	e.checkA11y("plugins")
	var txt string
	e.run("plugins text", chromedp.Text("main", &txt, chromedp.ByQuery))
	if !strings.Contains(txt, "urgent-tagger") || !strings.Contains(txt, "webhook") {
		e.t.Fatalf("rules and plugins page: %q", txt)
	}
	e.open("#/events")
	e.waitText("#tail-state", func(s string) bool { return s == "Streaming" }, "event stream")
	e.checkA11y("events")
	e.api("POST", "/v1/accounts/phone1/sim/inbound", map[string]any{"from": "+15550004444", "text": "live one"})
	e.waitText("#tail li", func(s string) bool { return strings.Contains(s, "live one") }, "live tail")
}
