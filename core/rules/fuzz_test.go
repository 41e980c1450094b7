package rules

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dop251/goja"

	"github.com/wildcathub/wildcat/core/event"
)

// FuzzJSONBridge: the conversions between Go/JSON and goja — kv values
// (JSON → plain JS values → JSON.stringify) and events (msg, a read-only
// view of event.Event) — never panic, and a JSON value survives the trip
// into a rule and back unchanged.
func FuzzJSONBridge(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,-0,"x",true,null,{"b":{}}],"\u00e9":"\ud83d\ude00"}`))
	f.Add([]byte(`[1e308, -1e-308, 9007199254740993, "\u0000", "\ud800"]`))
	f.Add([]byte(`{"id":"acme:ABC","kind":"message.received","accountId":"acme","message":{"messageId":"ABC","text":"hi","mentions":["a@s.whatsapp.net"]}}`))
	f.Add([]byte(`"just a string"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rt := goja.New()
		m := &vm{rt: rt}
		m.stringfy, _ = goja.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))

		var v any
		if json.Unmarshal(data, &v) == nil {
			s, err := m.stringfy(goja.Undefined(), m.plain(v))
			if err != nil {
				t.Fatalf("stringify %s: %v", data, err)
			}
			var back any
			if err := json.Unmarshal([]byte(s.String()), &back); err != nil {
				t.Fatalf("stringify %s gave %s: %v", data, s, err)
			}
			if !reflect.DeepEqual(v, back) {
				t.Fatalf("JSON changed on the way through a rule:\n in %s\nout %s", data, s)
			}
		}

		var ev event.Event
		if json.Unmarshal(data, &ev) != nil {
			return
		}
		s, err := m.stringfy(goja.Undefined(), m.message(&ev))
		if err != nil {
			t.Fatalf("stringify msg of %s: %v", data, err)
		}
		if !json.Valid([]byte(s.String())) {
			t.Fatalf("msg of %s is not JSON: %s", data, s)
		}
	})
}
