package rules

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// jsFunc is goja's fast native function shape (no reflection per call).
type jsFunc = func(goja.FunctionCall) goja.Value

func (m *vm) throw(format string, args ...any) {
	panic(m.rt.NewTypeError(fmt.Sprintf(format, args...)))
}

// throwGo throws err as a JS Error whose Go error stays in the chain, so
// ErrTimeout from a Go function is recognised after the call.
func (m *vm) throwGo(err error) {
	panic(m.rt.NewGoError(err))
}

// installGlobals defines what a rule file sees besides the language: on()
// and console. There is no require, no filesystem and no network: goja
// has none, and nothing here adds them beyond ctx.http.fetch.
func (m *vm) installGlobals() error {
	rt := m.rt
	if err := rt.Set("on", jsFunc(m.jsOn)); err != nil {
		return err
	}
	console := rt.NewObject()
	for name, level := range map[string]slog.Level{"log": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError} {
		_ = console.Set(name, jsFunc(m.logFunc(level)))
	}
	if err := rt.Set("console", console); err != nil {
		return err
	}
	m.ctxObj = m.buildCtx()
	return nil
}

// jsOn registers a handler: on("message.received", fn). Patterns are event
// kinds, "family.*", "*", or a bare family ("message") meaning "message.*".
func (m *vm) jsOn(c goja.FunctionCall) goja.Value {
	if !m.loading {
		m.throw("on() registers handlers at the top level of the rule file, not inside a handler")
	}
	pattern := c.Argument(0).String()
	if !strings.Contains(pattern, ".") && pattern != "*" {
		pattern += ".*"
	}
	if err := event.ValidateKindPattern(pattern); err != nil {
		m.throw("on(%q): %v", c.Argument(0).String(), err)
	}
	fn, ok := goja.AssertFunction(c.Argument(1))
	if !ok {
		m.throw("on(%q, handler): handler must be a function", pattern)
	}
	m.handlers = append(m.handlers, handler{pattern: pattern, fn: fn})
	return goja.Undefined()
}

// current returns the call in progress; ctx functions are only meaningful
// inside a handler.
func (m *vm) current(fn string) *call {
	if m.call == nil {
		m.throw("ctx.%s can only be used while a handler runs", fn)
	}
	return m.call
}

func (m *vm) buildCtx() *goja.Object {
	rt := m.rt
	ctx := rt.NewObject()
	set := func(o *goja.Object, name string, f jsFunc) { _ = o.Set(name, f) }

	_ = ctx.Set("rule", m.v.rule.name)
	set(ctx, "reply", m.jsReply)
	set(ctx, "send", m.jsSend)
	set(ctx, "react", m.jsReact)
	set(ctx, "markRead", m.jsMarkRead)
	set(ctx, "drop", m.jsDrop)
	set(ctx, "tag", m.jsTag)
	set(ctx, "annotate", m.jsAnnotate)
	set(ctx, "route", m.jsRoute)
	set(ctx, "self", m.jsSelf)
	set(ctx, "group", m.jsGroup)

	kv := rt.NewObject()
	set(kv, "get", m.jsKVGet)
	set(kv, "set", m.jsKVSet)
	set(kv, "incr", m.jsKVIncr)
	set(kv, "del", m.jsKVDel)
	_ = ctx.Set("kv", kv)

	log := rt.NewObject()
	set(log, "info", m.logFunc(slog.LevelInfo))
	set(log, "warn", m.logFunc(slog.LevelWarn))
	set(log, "error", m.logFunc(slog.LevelError))
	set(log, "debug", m.logFunc(slog.LevelDebug))
	_ = ctx.Set("log", log)

	tm := rt.NewObject()
	set(tm, "now", m.jsTimeNow)
	set(tm, "within", m.jsTimeWithin)
	_ = ctx.Set("time", tm)

	httpObj := rt.NewObject()
	set(httpObj, "fetch", m.jsFetch)
	_ = ctx.Set("http", httpObj)

	cfg := m.v.cfg.raw
	if cfg == nil {
		cfg = map[string]any{}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		b = []byte("{}")
	}
	cfgVal, err := m.parse(goja.Undefined(), rt.ToValue(string(b)))
	if err == nil {
		_, _ = m.freeze(goja.Undefined(), cfgVal)
		_ = ctx.Set("config", cfgVal)
	}
	// Frozen so that a rule cannot replace ctx.reply for later calls.
	for _, o := range []*goja.Object{kv, log, tm, httpObj, ctx} {
		_, _ = m.freeze(goja.Undefined(), o)
	}
	return ctx
}

// record passes an effect to the live Effects and keeps it for the result.
func (c *call) record(e Effect) {
	if c.effects == nil {
		c.effects = c.firstEffects[:0]
	}
	c.effects = append(c.effects, e)
}

func (c *call) chat() string {
	if c.ev.ChatID != "" {
		return c.ev.ChatID
	}
	if c.ev.Message != nil {
		return c.ev.Message.ChatID
	}
	return ""
}

// --- messages ---------------------------------------------------------------

// jsReply: ctx.reply(text | {text | media+caption | location | contacts,
// mentions, quote}, options?). The reply goes to the event's chat and
// quotes the event's message only when quote is true: an auto-reply in a
// 1:1 chat reads naturally without a quote, and a rule asks for one where
// context matters (groups).
func (m *vm) jsReply(fc goja.FunctionCall) goja.Value {
	c := m.current("reply")
	to := c.chat()
	if to == "" {
		m.throw("ctx.reply: a %s event has no chat to reply to", c.ev.Kind)
	}
	req, ref, quote := m.sendRequest("reply", fc.Argument(0), fc.Argument(1), c)
	req.To = to
	if quote {
		msg := c.ev.Message
		if msg == nil || msg.MessageID == "" {
			m.throw("ctx.reply: quote needs a message event, this is %s", c.ev.Kind)
		}
		req.ReplyTo = &session.QuoteRef{MessageID: msg.MessageID, Sender: msg.From, Message: msg}
	}
	c.record(Effect{Kind: EffectReply, Rule: m.v.rule.name, Message: req, Media: ref})
	if c.eff != nil {
		c.eff.Reply(req)
	}
	return goja.Undefined()
}

// jsSend: ctx.send(to, content, options?); to is a JID or a phone number.
func (m *vm) jsSend(fc goja.FunctionCall) goja.Value {
	c := m.current("send")
	to, err := normaliseJID(fc.Argument(0).String())
	if goja.IsUndefined(fc.Argument(0)) || err != nil {
		m.throw("ctx.send: first argument must be a chat JID or a phone number: %v", err)
	}
	req, ref, quote := m.sendRequest("send", fc.Argument(1), fc.Argument(2), c)
	if quote {
		m.throw("ctx.send: quote only works with ctx.reply (a quote must be in the same chat)")
	}
	req.To = to
	c.record(Effect{Kind: EffectSend, Rule: m.v.rule.name, To: to, Message: req, Media: ref})
	if c.eff != nil {
		c.eff.Send(to, req)
	}
	return goja.Undefined()
}

func normaliseJID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "undefined" {
		return "", errors.New("empty")
	}
	if strings.Contains(s, "@") {
		return s, nil
	}
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
			return -1
		}
		return 'x'
	}, s)
	if digits == "" || strings.Contains(digits, "x") {
		return "", fmt.Errorf("%q is neither a JID nor a phone number", s)
	}
	return digits + "@s.whatsapp.net", nil
}

var sendKeys = "text, media, caption, location, contacts, poll, mentions, quote"

// sendRequest reads the content argument (a string or an object) and the
// optional options object; both take the same keys.
func (m *vm) sendRequest(fn string, content, opts goja.Value, c *call) (*session.SendRequest, *MediaRef, bool) {
	req := &session.SendRequest{Source: event.SourceRule}
	fields := map[string]goja.Value{}
	switch {
	case goja.IsUndefined(content) || goja.IsNull(content):
		m.throw("ctx.%s: nothing to send (give a text or an object with %s)", fn, sendKeys)
	case isString(content):
		fields["text"] = content
	default:
		m.readFields(fn, content, fields)
	}
	if !goja.IsUndefined(opts) && !goja.IsNull(opts) {
		m.readFields(fn, opts, fields)
	}
	var (
		ref   *MediaRef
		quote bool
		kinds []string
	)
	for k, v := range fields {
		switch k {
		case "text":
			req.Text = v.String()
			kinds = append(kinds, k)
		case "media":
			kinds = append(kinds, k)
		case "caption":
		case "quote":
			quote = v.ToBoolean()
		case "mentions":
			for _, s := range m.stringList(fn, ": mentions", v) {
				jid, err := normaliseJID(s)
				if err != nil {
					m.throw("ctx.%s: mentions: %v", fn, err)
				}
				req.Mentions = append(req.Mentions, jid)
			}
		case "location":
			var loc event.Location
			if err := m.exportJSON(v, &loc); err != nil || (loc.Latitude == 0 && loc.Longitude == 0) {
				m.throw("ctx.%s: location must be {lat, lng, name?, address?}", fn)
			}
			req.Location = &loc
			kinds = append(kinds, k)
		case "contacts":
			if err := m.exportJSON(v, &req.Contacts); err != nil || len(req.Contacts) == 0 {
				m.throw("ctx.%s: contacts must be a list of {displayName, vcard}", fn)
			}
			kinds = append(kinds, k)
		case "poll":
			// Checked like every send's poll (outgoing.CheckPoll) when it is
			// sent: 2 to 12 distinct options, a name, selectableCount.
			var p struct {
				Name            string   `json:"name"`
				Options         []string `json:"options"`
				SelectableCount uint32   `json:"selectableCount"`
			}
			if err := m.exportJSON(v, &p); err != nil {
				m.throw("ctx.%s: poll must be {name, options: [..], selectableCount?}", fn)
			}
			req.Poll = &session.PollSend{Name: p.Name, Options: p.Options, SelectableCount: p.SelectableCount}
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		got := strings.Join(kinds, ", ")
		if got == "" {
			got = "none"
		}
		m.throw("ctx.%s: give exactly one of text, media, location, contacts or poll (got %s)", fn, got)
	}
	if mv, ok := fields["media"]; ok {
		req.Media, ref = m.media(fn, mv, c)
	}
	if caption, ok := fields["caption"]; ok {
		if req.Media == nil {
			m.throw("ctx.%s: caption goes with media; for a plain message use text", fn)
		}
		req.Media.Caption = caption.String()
	}
	return req, ref, quote
}

func (m *vm) readFields(fn string, v goja.Value, into map[string]goja.Value) {
	obj, ok := v.(*goja.Object)
	if !ok {
		m.throw("ctx.%s: expected a text or an object with %s, got %s", fn, sendKeys, v.String())
	}
	for _, k := range obj.Keys() {
		switch k {
		case "text", "media", "caption", "location", "contacts", "poll", "mentions", "quote":
			into[k] = obj.Get(k)
		default:
			m.throw("ctx.%s: unknown key %q (known: %s)", fn, k, sendKeys)
		}
	}
}

// isString reports a string primitive: the values whose Export is a Go
// string, without boxing one.
func isString(v goja.Value) bool {
	_, ok := v.(goja.String)
	return ok
}

// stringList reads a string or a list of strings; the error names
// prefix+what (two parts, so that no message is built unless it is
// thrown).
func (m *vm) stringList(prefix, what string, v goja.Value) []string {
	if isString(v) {
		return []string{v.String()}
	}
	if out, ok := m.arrayStrings(v); ok {
		return out
	}
	var out []string
	if err := m.rt.ExportTo(v, &out); err != nil {
		m.throw("%s%s: expected a string or a list of strings", prefix, what)
	}
	return out
}

// arrayStrings is what rt.ExportTo(v, &[]string{}) returns for an Array
// iterated by the built-in iterator (ctx.tag(["a", "b"])), without goja's
// reflection: ExportTo iterates the array (installLimits wraps
// Array.prototype[Symbol.iterator], so goja's own shortcut for arrays never
// applies) and converts every element by reflection, most of a ctx.tag
// call. The loop is that iteration, step by step as %ArrayIteratorPrototype%.next
// takes it (length, then the element), and each element converts as
// ExportTo converts to a string: undefined and null to "", anything else
// by ToString. ok is false for anything else — not an Array, an iterator
// of the rule's own, or a length over the iterator's cap (which throws) —
// and the caller takes goja's path.
func (m *vm) arrayStrings(v goja.Value) (out []string, ok bool) {
	o, isObj := v.(*goja.Object)
	// A Proxy's class is Object, never Array: no trap runs here.
	if !isObj || o.ClassName() != "Array" || m.arrayIter == nil {
		return nil, false
	}
	if o.GetSymbol(goja.SymIterator) != m.arrayIter || m.arrayIterProto.Get("next") != m.arrayIterNext {
		return nil, false
	}
	n := o.Get("length").ToInteger()
	if n > MaxBuiltinElements {
		return nil, false
	}
	out = make([]string, 0, max(n, 0))
	for i := int64(0); i < o.Get("length").ToInteger(); i++ {
		el := o.Get(strconv.FormatInt(i, 10))
		if el == nil || goja.IsUndefined(el) || goja.IsNull(el) {
			out = append(out, "")
			continue
		}
		out = append(out, el.String())
	}
	return out, true
}

// exportJSON converts a JS value into a Go struct through its JSON form, so
// the field names are those of the JSON tags (the rule API's names).
func (m *vm) exportJSON(v goja.Value, into any) error {
	s, err := m.stringfy(goja.Undefined(), v)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(s.String()), into)
}

var mediaKinds = map[string]session.MediaKind{
	"image": session.MediaImage, "video": session.MediaVideo, "gif": session.MediaGIF, "audio": session.MediaAudio,
	"voice": session.MediaVoice, "document": session.MediaDocument, "sticker": session.MediaSticker,
}

type mediaSpec struct {
	URL      string  `json:"url"`
	Data     string  `json:"data"`
	MediaID  string  `json:"mediaId"`
	Mimetype string  `json:"mimetype"`
	Kind     string  `json:"kind"`
	Filename string  `json:"filename"`
	Seconds  float64 `json:"seconds"`
}

// media reads {url | data | mediaId, mimetype, kind, filename, seconds}.
// data is base64 bytes; url is fetched under the rule's http.allow list
// (within the handler's deadline: raise the rule's timeout for that);
// mediaId is the daemon's stored media. A dry run records url and mediaId
// without loading them.
func (m *vm) media(fn string, v goja.Value, c *call) (*session.MediaSend, *MediaRef) {
	var spec mediaSpec
	obj, ok := v.(*goja.Object)
	if !ok {
		m.throw("ctx.%s: media must be {url | data | mediaId, mimetype, kind?, filename?}", fn)
	}
	for _, k := range obj.Keys() {
		switch k {
		case "url", "data", "mediaId", "mimetype", "kind", "filename", "seconds":
		default:
			m.throw("ctx.%s: media: unknown key %q (known: url, data, mediaId, mimetype, kind, filename, seconds)", fn, k)
		}
	}
	if err := m.exportJSON(v, &spec); err != nil {
		m.throw("ctx.%s: media: %v", fn, err)
	}
	sources := 0
	for _, s := range []string{spec.URL, spec.Data, spec.MediaID} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		m.throw("ctx.%s: media needs exactly one of url, data or mediaId", fn)
	}
	ms := &session.MediaSend{Mimetype: spec.Mimetype, Filename: spec.Filename, Seconds: uint32(max(0, spec.Seconds))}
	var ref *MediaRef
	switch {
	case spec.Data != "":
		data, err := base64.StdEncoding.DecodeString(spec.Data)
		if err != nil {
			m.throw("ctx.%s: media.data is not base64: %v", fn, err)
		}
		if len(data) > MaxMediaBytes {
			m.throw("ctx.%s: media of %d bytes is larger than %d", fn, len(data), MaxMediaBytes)
		}
		ms.Data = data
	case spec.URL != "":
		if m.v.eng.opts.DryRun {
			ref = &MediaRef{URL: spec.URL}
			break
		}
		resp, err := m.v.eng.fetch.do(c.context(), m.v.cfg.allow, m.v.cfg.allowPrivate, MaxMediaBytes, fetchRequest{URL: spec.URL})
		if err != nil {
			m.throwGo(m.deadlineAware(c, fmt.Errorf("ctx.%s: media.url: %w", fn, err)))
		}
		if resp.Status/100 != 2 {
			m.throw("ctx.%s: media.url answered %d", fn, resp.Status)
		}
		ms.Data = resp.Body
		if ms.Mimetype == "" {
			ms.Mimetype, _, _ = mime.ParseMediaType(resp.Headers["content-type"])
		}
	default:
		res := m.v.eng.opts.Media
		if res == nil {
			if m.v.eng.opts.DryRun {
				ref = &MediaRef{MediaID: spec.MediaID}
				break
			}
			m.throw("ctx.%s: media.mediaId needs the daemon's media store, which this engine lacks", fn)
		}
		data, mt, err := res.ResolveMedia(c.context(), spec.MediaID)
		if err != nil {
			m.throwGo(m.deadlineAware(c, fmt.Errorf("ctx.%s: media.mediaId %q: %w", fn, spec.MediaID, err)))
		}
		ms.Data = data
		if ms.Mimetype == "" {
			ms.Mimetype = mt
		}
	}
	if spec.Kind != "" {
		k, ok := mediaKinds[spec.Kind]
		if !ok {
			m.throw("ctx.%s: media.kind %q is not one of image, video, gif, audio, voice, document, sticker", fn, spec.Kind)
		}
		ms.Kind = k
	} else if ms.Kind = kindOf(ms.Mimetype); ms.Kind == "" {
		m.throw("ctx.%s: media needs a kind or a mimetype", fn)
	}
	if ms.Mimetype == "" && ref == nil {
		m.throw("ctx.%s: media needs a mimetype", fn)
	}
	return ms, ref
}

func kindOf(mimetype string) session.MediaKind {
	base, _, _ := strings.Cut(mimetype, ";")
	switch {
	case base == "":
		return ""
	case base == "image/webp":
		return session.MediaSticker
	case strings.HasPrefix(base, "image/"):
		return session.MediaImage
	case strings.HasPrefix(base, "video/"):
		return session.MediaVideo
	case strings.HasPrefix(base, "audio/"):
		return session.MediaAudio
	}
	return session.MediaDocument
}

func (m *vm) jsReact(fc goja.FunctionCall) goja.Value {
	c := m.current("react")
	msg := c.ev.Message
	if msg == nil || msg.MessageID == "" {
		m.throw("ctx.react: a %s event has no message to react to", c.ev.Kind)
	}
	emoji := fc.Argument(0)
	if !isString(emoji) {
		m.throw("ctx.react: give an emoji (\"\" removes the reaction)")
	}
	req := &session.SendRequest{To: c.chat(), Source: event.SourceRule, Reaction: &session.ReactionSend{
		MessageID: msg.MessageID, FromMe: msg.FromMe, Emoji: emoji.String(),
	}}
	if msg.IsGroup && !msg.FromMe {
		req.Reaction.Sender = msg.From
	}
	c.record(Effect{Kind: EffectReact, Rule: m.v.rule.name, Emoji: emoji.String(), Message: req})
	if c.eff != nil {
		c.eff.React(emoji.String())
	}
	return goja.Undefined()
}

func (m *vm) jsMarkRead(goja.FunctionCall) goja.Value {
	c := m.current("markRead")
	if c.ev.Message == nil || c.ev.Message.MessageID == "" {
		m.throw("ctx.markRead: a %s event has no message to mark read", c.ev.Kind)
	}
	c.record(Effect{Kind: EffectMarkRead, Rule: m.v.rule.name})
	if c.eff != nil {
		c.eff.MarkRead()
	}
	return goja.Undefined()
}

func (m *vm) jsDrop(goja.FunctionCall) goja.Value {
	c := m.current("drop")
	if c.dropped {
		return goja.Undefined()
	}
	c.dropped = true
	c.record(Effect{Kind: EffectDrop, Rule: m.v.rule.name})
	if c.eff != nil {
		c.eff.Drop()
	}
	return goja.Undefined()
}

// names flattens arguments given as strings or lists of strings. The
// first argument's list (a new slice) is the result's start.
func (m *vm) names(fn string, args []goja.Value) []string {
	var out []string
	for i, a := range args {
		list := m.stringList("ctx.", fn, a)
		for j, s := range list {
			if s = strings.TrimSpace(s); s == "" {
				m.throw("ctx.%s: empty name", fn)
			}
			list[j] = s
		}
		if i == 0 {
			out = list
		} else {
			out = append(out, list...)
		}
	}
	if len(out) == 0 {
		m.throw("ctx.%s: give at least one name", fn)
	}
	return out
}

func (m *vm) jsTag(fc goja.FunctionCall) goja.Value {
	c := m.current("tag")
	tags := m.names("tag", fc.Arguments)
	c.record(Effect{Kind: EffectTag, Rule: m.v.rule.name, Tags: tags})
	if c.eff != nil {
		c.eff.Tag(tags...)
	}
	return goja.Undefined()
}

func (m *vm) jsRoute(fc goja.FunctionCall) goja.Value {
	c := m.current("route")
	sinks := m.names("route", fc.Arguments)
	c.record(Effect{Kind: EffectRoute, Rule: m.v.rule.name, Sinks: sinks})
	if c.eff != nil {
		c.eff.Route(sinks...)
	}
	return goja.Undefined()
}

func (m *vm) jsAnnotate(fc goja.FunctionCall) goja.Value {
	c := m.current("annotate")
	key := fc.Argument(0)
	if !isString(key) || key.String() == "" {
		m.throw("ctx.annotate(key, value): key must be a non-empty string")
	}
	var value string
	switch x := fc.Argument(1).Export().(type) {
	case string:
		value = x
	case int64, float64, bool:
		value = fc.Argument(1).String()
	default:
		m.throw("ctx.annotate(%q, value): value must be a string, number or boolean", key.String())
	}
	c.record(Effect{Kind: EffectAnnotate, Rule: m.v.rule.name, Key: key.String(), Value: value})
	if c.eff != nil {
		c.eff.Annotate(key.String(), value)
	}
	return goja.Undefined()
}

// jsSelf: ctx.self() → {id, jids}: the account the event belongs to and
// its own JIDs.
func (m *vm) jsSelf(goja.FunctionCall) goja.Value {
	c := m.current("self")
	jids := []any{}
	if self := m.v.eng.opts.Self; self != nil {
		for _, j := range self(c.ev.AccountID) {
			jids = append(jids, j)
		}
	}
	o := m.rt.NewObject()
	_ = o.Set("id", c.ev.AccountID)
	_ = o.Set("jids", m.rt.NewArray(jids...))
	return o
}

// jsGroup: ctx.group() → the group of the event's chat as it is now
// ({jid, name, topic, owner, locked, announce, joinApproval,
// participants: [{jid, pn, lid, role}]}), or null outside groups. It reads
// the account's session, within the handler's deadline.
func (m *vm) jsGroup(goja.FunctionCall) goja.Value {
	c := m.current("group")
	jid := c.chat()
	if !strings.HasSuffix(jid, "@g.us") {
		return goja.Null()
	}
	look := m.v.eng.opts.Group
	if look == nil {
		m.throw("ctx.group: this engine has no access to groups")
	}
	g, err := look(c.context(), c.ev.AccountID, jid)
	if err != nil {
		m.throwGo(m.deadlineAware(c, fmt.Errorf("ctx.group: %w", err)))
	}
	b, err := json.Marshal(g)
	if err != nil {
		m.throwGo(fmt.Errorf("ctx.group: %w", err))
	}
	v, err := m.parse(goja.Undefined(), m.rt.ToValue(string(b)))
	if err != nil {
		m.throwGo(fmt.Errorf("ctx.group: %w", err))
	}
	return v
}

// --- log --------------------------------------------------------------------

// logFunc writes the arguments, space-separated like console.log, with
// the rule and the calling line.
func (m *vm) logFunc(level slog.Level) jsFunc {
	return func(fc goja.FunctionCall) goja.Value {
		log := m.v.eng.log
		if !log.Enabled(context.Background(), level) {
			return goja.Undefined()
		}
		parts := make([]string, len(fc.Arguments))
		for i, a := range fc.Arguments {
			if o, ok := a.(*goja.Object); ok && o.ClassName() != "Error" && o.ClassName() != "Function" {
				if s, err := m.stringfy(goja.Undefined(), a); err == nil && !goja.IsUndefined(s) {
					parts[i] = s.String()
					continue
				}
			}
			parts[i] = a.String()
		}
		// The innermost frame is this Go function; the caller is next.
		var frames [4]goja.StackFrame
		line, _ := m.v.position(m.rt.CaptureCallStack(len(frames), frames[:0]))
		attrs := []slog.Attr{slog.String("rule", m.v.rule.name), slog.String("file", m.v.rule.file), slog.Int("line", line)}
		if m.call != nil {
			attrs = append(attrs, slog.String("event_id", m.call.ev.ID))
		}
		log.LogAttrs(context.Background(), level, strings.Join(parts, " "), attrs...)
		return goja.Undefined()
	}
}

// --- kv ---------------------------------------------------------------------

// deadlineAware marks an error of a Go function that ran out of the
// handler's time as a timeout.
// The call is recorded as cut even if the rule catches the error.
func (m *vm) deadlineAware(c *call, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && !time.Now().Before(c.deadline) {
		if c.cutIn == nil {
			var frames [4]goja.StackFrame
			line, col := m.v.position(m.rt.CaptureCallStack(len(frames), frames[:0]))
			c.cutIn = &RuleError{Rule: m.v.rule.name, File: m.v.rule.file, Line: line, Column: col, Timeout: true}
		}
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

func (m *vm) kvKey(fn string, v goja.Value) string {
	if !isString(v) {
		m.throw("ctx.kv.%s: key must be a string", fn)
	}
	return v.String()
}

// ttlOption reads {ttl: "10m" | seconds}.
func (m *vm) ttlOption(fn string, v goja.Value) time.Duration {
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return 0
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		m.throw("ctx.kv.%s: options must be an object like {ttl: \"10m\"}", fn)
	}
	var ttl time.Duration
	for _, k := range obj.Keys() {
		if k != "ttl" {
			m.throw("ctx.kv.%s: unknown option %q (known: ttl)", fn, k)
		}
		d, err := durationValue(obj.Get(k).Export(), time.Second)
		if err != nil || d <= 0 {
			m.throw("ctx.kv.%s: ttl must be a duration like \"10m\" or a number of seconds: %v", fn, obj.Get(k))
		}
		ttl = d
	}
	return ttl
}

func (m *vm) jsKVGet(fc goja.FunctionCall) goja.Value {
	c := m.current("kv.get")
	key := m.kvKey("get", fc.Argument(0))
	raw, ok, err := m.v.eng.kv.Get(c.context(), m.v.rule.name, key)
	if err != nil {
		m.throwGo(m.deadlineAware(c, err))
	}
	if !ok {
		return goja.Undefined()
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		m.throwGo(fmt.Errorf("kv get %q: stored value is not JSON: %w", key, err))
	}
	return m.plain(v)
}

// plain builds ordinary (mutable, per-call) JS values from decoded JSON;
// it is several times cheaper than goja's JSON.parse, which dominated a kv
// read. Object keys come out sorted.
func (m *vm) plain(v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case []any:
		items := make([]any, len(x))
		for i, e := range x {
			items[i] = m.plain(e)
		}
		return m.rt.NewArray(items...)
	case map[string]any:
		o := m.rt.NewObject()
		for _, k := range slices.Sorted(maps.Keys(x)) {
			_ = o.Set(k, m.plain(x[k]))
		}
		return o
	}
	return m.rt.ToValue(v)
}

func (m *vm) jsKVSet(fc goja.FunctionCall) goja.Value {
	c := m.current("kv.set")
	key := m.kvKey("set", fc.Argument(0))
	val := fc.Argument(1)
	if goja.IsUndefined(val) {
		m.throw("ctx.kv.set(%q): value is undefined (use ctx.kv.del to remove a key)", key)
	}
	s, err := m.stringfy(goja.Undefined(), val)
	if err != nil || goja.IsUndefined(s) {
		m.throw("ctx.kv.set(%q): value cannot be stored as JSON", key)
	}
	if len(s.String()) > MaxKVValue {
		m.throw("ctx.kv.set(%q): value of %d bytes is larger than %d", key, len(s.String()), MaxKVValue)
	}
	ttl := m.ttlOption("set", fc.Argument(2))
	if err := m.v.eng.kv.Set(c.context(), m.v.rule.name, key, json.RawMessage(s.String()), ttl); err != nil {
		m.throwGo(m.deadlineAware(c, err))
	}
	return goja.Undefined()
}

func (m *vm) jsKVIncr(fc goja.FunctionCall) goja.Value {
	c := m.current("kv.incr")
	key := m.kvKey("incr", fc.Argument(0))
	by := 1.0
	opts := fc.Argument(1)
	if arg := fc.Argument(1); !goja.IsUndefined(arg) && !goja.IsNull(arg) {
		if _, isObj := arg.(*goja.Object); !isObj {
			by = arg.ToFloat()
			if math.IsNaN(by) || math.IsInf(by, 0) {
				m.throw("ctx.kv.incr(%q, by): by must be a number", key)
			}
			opts = fc.Argument(2)
		}
	}
	ttl := m.ttlOption("incr", opts)
	n, err := m.v.eng.kv.Incr(c.context(), m.v.rule.name, key, by, ttl)
	if err != nil {
		m.throwGo(m.deadlineAware(c, err))
	}
	return m.rt.ToValue(n)
}

func (m *vm) jsKVDel(fc goja.FunctionCall) goja.Value {
	c := m.current("kv.del")
	key := m.kvKey("del", fc.Argument(0))
	ok, err := m.v.eng.kv.Del(c.context(), m.v.rule.name, key)
	if err != nil {
		m.throwGo(m.deadlineAware(c, err))
	}
	return m.rt.ToValue(ok)
}

// --- time -------------------------------------------------------------------

func (m *vm) zone(fn string, v goja.Value) *time.Location {
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return m.v.cfg.timezone
	}
	loc, err := loadLocation(v.String())
	if err != nil {
		m.throw("ctx.time.%s: %v", fn, err)
	}
	return loc
}

// jsTimeNow: ctx.time.now(tz?) → {iso, date, weekday, hour, minute, unix}.
func (m *vm) jsTimeNow(fc goja.FunctionCall) goja.Value {
	m.current("time.now")
	t := m.v.eng.now().In(m.zone("now", fc.Argument(0)))
	o := m.rt.NewObject()
	_ = o.Set("iso", t.Format(time.RFC3339))
	_ = o.Set("date", t.Format(time.DateOnly))
	_ = o.Set("weekday", t.Weekday().String()[:3])
	_ = o.Set("hour", t.Hour())
	_ = o.Set("minute", t.Minute())
	_ = o.Set("unix", t.Unix())
	_ = o.Set("zone", t.Location().String())
	return o
}

// jsTimeWithin: ctx.time.within("Mon-Fri 09:00-18:00", tz?).
func (m *vm) jsTimeWithin(fc goja.FunctionCall) goja.Value {
	m.current("time.within")
	spec := fc.Argument(0)
	if !isString(spec) {
		m.throw("ctx.time.within(spec, tz): spec must be a string like \"Mon-Fri 09:00-18:00\"")
	}
	s, err := cachedSchedule(spec.String())
	if err != nil {
		m.throw("ctx.time.within: bad schedule %v", err)
	}
	return m.rt.ToValue(s.contains(m.v.eng.now().In(m.zone("within", fc.Argument(1)))))
}

// --- http -------------------------------------------------------------------

// jsFetch: ctx.http.fetch(url, {method, headers, body, timeout}) →
// {status, ok, headers, body, json()}. Only hosts on the rule's http.allow
// list; the call ends by the handler's deadline at the latest.
func (m *vm) jsFetch(fc goja.FunctionCall) goja.Value {
	c := m.current("http.fetch")
	if m.v.eng.opts.DryRun {
		m.throwGo(ErrFetchDisabled)
	}
	fr := fetchRequest{URL: fc.Argument(0).String()}
	if opts, ok := fc.Argument(1).(*goja.Object); ok {
		for _, k := range opts.Keys() {
			v := opts.Get(k)
			switch k {
			case "method":
				fr.Method = v.String()
			case "headers":
				if err := m.rt.ExportTo(v, &fr.Headers); err != nil {
					m.throw("ctx.http.fetch: headers must be an object of strings")
				}
			case "body":
				if isString(v) {
					fr.Body = v.String()
				} else {
					s, err := m.stringfy(goja.Undefined(), v)
					if err != nil {
						m.throw("ctx.http.fetch: body cannot be sent as JSON")
					}
					fr.Body = s.String()
					if fr.Headers == nil {
						fr.Headers = map[string]string{}
					}
					if _, set := fr.Headers["Content-Type"]; !set {
						fr.Headers["Content-Type"] = "application/json"
					}
				}
			case "timeout":
				d, err := durationValue(v.Export(), time.Millisecond)
				if err != nil || d <= 0 {
					m.throw("ctx.http.fetch: timeout must be a duration like \"2s\" or milliseconds")
				}
				fr.Timeout = d
			default:
				m.throw("ctx.http.fetch: unknown option %q (known: method, headers, body, timeout)", k)
			}
		}
	}
	resp, err := m.v.eng.fetch.do(c.context(), m.v.cfg.allow, m.v.cfg.allowPrivate, m.v.cfg.maxBytes, fr)
	if err != nil {
		m.throwGo(m.deadlineAware(c, err))
	}
	o := m.rt.NewObject()
	_ = o.Set("status", resp.Status)
	_ = o.Set("ok", resp.Status >= 200 && resp.Status < 300)
	_ = o.Set("headers", resp.Headers)
	body := string(resp.Body)
	_ = o.Set("body", body)
	_ = o.Set("json", jsFunc(func(goja.FunctionCall) goja.Value {
		v, err := m.parse(goja.Undefined(), m.rt.ToValue(body))
		var ex *goja.Exception
		if errors.As(err, &ex) {
			panic(ex.Value()) // rethrow JSON.parse's SyntaxError as is
		} else if err != nil {
			m.throwGo(err)
		}
		return v
	}))
	return o
}
