package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/poll"
)

// TestOpenAPIListsEveryRoute walks the router: every /v1 route must be in
// the served document and every documented route must exist.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	d, c := messagesDaemon(t, nil)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(c.must(c.get("/v1/openapi.json"), 200).body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	err := d.API().Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(path, "/v1/") {
			return nil
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			if m == http.MethodHead {
				continue // served with GET
			}
			served[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes not documented: %v\ndocumented routes that do not exist: %v", missing, extra)
	}
	if len(served) < 17 {
		t.Fatalf("only %d routes walked: %v", len(served), served)
	}
}

// TestOpenAPIExamplesRun sends every documented request example, in the
// document's order, to a running daemon: each must get the documented
// status and a body with every field of the documented response example.
func TestOpenAPIExamplesRun(t *testing.T) {
	// Pairing waits for Scan: acme stays pairing. The pipeline examples
	// deliver to a sink by the example's name.
	d, c := accountsDaemonWith(t, accountsConfig(t), -1, nil, func(o *daemon.Options) {
		ok := outbox.SinkFunc(func(context.Context, *outbox.Job) outbox.Result { return outbox.OK() })
		// mediaarchive: the backfill example (POST /v1/media/archive) queues for it.
		o.Sinks = map[string]outbox.Sink{api.ExampleSink: ok, daemon.MediaArchiveTarget: ok}
	})
	c.must(c.post("/v1/accounts", `{"id":"demo","driver":"sim","name":"Demo"}`), 201)
	c.must(c.post("/v1/accounts/demo/connect", ""), 202)
	poll.Until(t, 30*time.Second, func() error { return d.Sim().Scan("demo") })
	c.waitState("demo", "connected")

	for _, op := range api.Operations() {
		path := op.Path
		for k, v := range op.PathExamples {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		if strings.Contains(path, "{") {
			t.Fatalf("%s %s: no example for a path variable", op.Method, op.Path)
		}
		if op.Query != "" {
			path += "?" + op.Query
		}
		bodies := map[string]string{"": ""}
		if op.BodyType != "" {
			bodies = map[string]string{}
			for name, ex := range op.BodyExamples {
				if s, ok := ex.(string); ok {
					bodies[name] = s
					continue
				}
				b, _ := json.Marshal(ex)
				bodies[name] = string(b)
			}
		}
		names := make([]string, 0, len(bodies))
		for n := range bodies {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, name := range names {
			t.Run(fmt.Sprintf("%s %s %s", op.Method, op.Path, name), func(t *testing.T) {
				var r reply
				if op.ResponseRaw == "text/event-stream" {
					// A stream never ends: check the status and type of its
					// answer, then hang up.
					checkStreamOpens(t, c.base+path, op.Status)
					return
				}
				check := func() error {
					r = c.do(op.Method, path, op.BodyType, bodies[name])
					if r.status != op.Status {
						return fmt.Errorf("status %d, want %d: %s", r.status, op.Status, r.body)
					}
					return nil
				}
				if op.Method == http.MethodGet {
					poll.Until(t, 10*time.Second, check) // e.g. the first QR code appears shortly after connect
				} else if err := check(); err != nil {
					t.Fatal(err)
				}
				ex, ok := op.ResponseEx.(map[string]any)
				if !ok {
					return
				}
				var got map[string]any
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatalf("answer is not a JSON object: %s", r.body)
				}
				for k := range ex {
					if _, ok := got[k]; !ok {
						t.Errorf("answer lacks the documented field %q: %s", k, r.body)
					}
				}
			})
		}
	}
}

func checkStreamOpens(t *testing.T, url string, status int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d type %q, want %d text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"), status)
	}
}
