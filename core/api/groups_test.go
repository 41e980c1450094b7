package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/wildcathub/wildcat/core/session"
)

// groupsFunc adapts a function to Groups.
type groupsFunc func(ctx context.Context, accountID string) (session.GroupSession, error)

func (f groupsFunc) Groups(ctx context.Context, accountID string) (session.GroupSession, error) {
	return f(ctx, accountID)
}

// TestGroupSessionErrorsBecomeProblems: an account whose driver has no
// group calls answers 501, an unknown one 404, one without a running
// session 409 — a problem each, never a 500.
func TestGroupSessionErrorsBecomeProblems(t *testing.T) {
	s := New(Options{Groups: groupsFunc(func(_ context.Context, id string) (session.GroupSession, error) {
		switch id {
		case "wa":
			return nil, fmt.Errorf("account %q: %w", id, session.ErrGroupsUnsupported)
		case "idle":
			return nil, fmt.Errorf("account %q: %w", id, session.ErrWrongState)
		}
		return nil, fmt.Errorf("account %q: %w", id, session.ErrAccountNotFound)
	})})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr() + "/v1/accounts/"
	for _, tc := range []struct {
		method, path, body string
		status             int
		slug               string
	}{
		{"GET", "wa/groups", "", http.StatusNotImplemented, "groups-unsupported"},
		{"POST", "wa/groups", `{"subject":"x","participants":["+15551230001"]}`, http.StatusNotImplemented, "groups-unsupported"},
		{"GET", "wa/groups/120363000000000001@g.us", "", http.StatusNotImplemented, "groups-unsupported"},
		{"GET", "idle/groups", "", http.StatusConflict, "wrong-state"},
		{"GET", "nobody/groups", "", http.StatusNotFound, "not-found"},
	} {
		ct := ""
		if tc.body != "" {
			ct = "application/json"
		}
		resp, body := do(t, tc.method, base+tc.path, ct, tc.body)
		var p Problem
		_ = json.Unmarshal(body, &p)
		if resp.StatusCode != tc.status || p.Type != ProblemType+tc.slug {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
}
