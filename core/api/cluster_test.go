package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/cluster"
)

// fakeCluster places account "here" locally, "there" on the daemon at
// url, and has no owner for "nowhere".
type fakeCluster struct{ url string }

func (f fakeCluster) ID() string { return "me" }

func (f fakeCluster) Owner(_ context.Context, id string, _ time.Duration) (string, bool, error) {
	switch id {
	case "there":
		return f.url, false, nil
	case "nowhere":
		return "", false, cluster.ErrNoOwner
	}
	return "", true, nil
}

func (f fakeCluster) OwnerOf(context.Context, string) (string, error) { return "", nil }

func (f fakeCluster) Instances(context.Context) ([]cluster.Instance, error) { return nil, nil }

func TestForwardingToTheAccountsDaemon(t *testing.T) {
	type seen struct{ method, path, body, auth, hop string }
	var mu sync.Mutex
	var got []seen
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Authorization"), r.Header.Get(ForwardedHeader)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"from":"owner"}`)
	}))
	defer owner.Close()

	s := New(Options{Cluster: fakeCluster{url: owner.URL}})
	local := 0
	s.Handle("/accounts/{id}/messages", func(w http.ResponseWriter, r *http.Request) error {
		local++
		return WriteJSON(w, http.StatusAccepted, map[string]string{"from": "local"})
	}, http.MethodPost)
	s.Handle("/accounts/{id}/messages", func(w http.ResponseWriter, r *http.Request) error {
		local++
		return WriteJSON(w, http.StatusOK, map[string]string{"from": "local"})
	}, http.MethodGet)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()

	do := func(method, path, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer wck_test")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	for _, tc := range []struct {
		name       string
		method     string
		path, body string
		hdr        []string
		status     int
		answer     string // in the body
		forwarded  bool
	}{
		{"session call for a remote account goes to its daemon", "POST", "/v1/accounts/there/messages?x=1", `{"text":"hi"}`, nil, 202, `"owner"`, true},
		{"session call for a local account is served here", "POST", "/v1/accounts/here/messages", `{"text":"hi"}`, nil, 202, `"local"`, false},
		{"a read is served by any daemon", "GET", "/v1/accounts/there/messages", "", nil, 200, `"local"`, false},
		{"a forwarded call is not forwarded again", "POST", "/v1/accounts/there/messages", `{"text":"hi"}`, []string{ForwardedHeader, "other"}, 503, "no-owner", false},
		{"no owner yet: 503 with Retry-After", "POST", "/v1/accounts/nowhere/messages", `{"text":"hi"}`, nil, 503, "no-owner", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			resp, body := do(tc.method, tc.path, tc.body, tc.hdr...)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.answer) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, body, tc.status, tc.answer)
			}
			if tc.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			mu.Lock()
			defer mu.Unlock()
			if !tc.forwarded {
				if len(got) != 0 {
					t.Fatalf("forwarded: %+v", got)
				}
				return
			}
			want := seen{tc.method, tc.path, tc.body, "Bearer wck_test", "me"}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("the owner saw %+v, want %+v", got, want)
			}
		})
	}
}
