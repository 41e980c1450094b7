package webhooks_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/core/webhooks"
)

// TestEndpointStore is the EndpointStore conformance suite: every field
// round-trips, errors are the documented ones, health writes touch only
// their fields.
func TestEndpointStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := endpointStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		until := t0.Add(24 * time.Hour)
		full := &webhooks.Endpoint{
			ID: "crm", URL: "https://crm.example.com/h", Events: []string{"message.*", "webhook.disabled"}, Accounts: []string{"acme", "beta"},
			Sources: []string{"phone", "api"}, Description: "the CRM", Headers: map[string]string{"X-Tenant": "7"}, Enabled: true, RateLimit: 2.5, Batch: true, Ordered: true, Source: webhooks.SourceConfig,
			Secret: "whsec_new", PreviousSecret: "whsec_old", PreviousSecretUntil: &until, CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
		}
		if err := s.Insert(ctx, full); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, &webhooks.Endpoint{ID: "crm", URL: "https://x.example/", CreatedAt: t0, UpdatedAt: t0}); !errors.Is(err, webhooks.ErrExists) {
			t.Fatalf("duplicate insert: %v", err)
		}
		got, err := s.Get(ctx, "crm")
		if err != nil || !reflect.DeepEqual(got, full) {
			t.Fatalf("round trip:\n got %+v (%v)\nwant %+v", got, err, full)
		}
		minimal := &webhooks.Endpoint{ID: "a", URL: "https://a.example/", Events: []string{"*"}, Accounts: []string{"*"}, Headers: map[string]string{},
			Source: webhooks.SourceAPI, Secret: "whsec_a", CreatedAt: t0, UpdatedAt: t0}
		if err := s.Insert(ctx, minimal); err != nil {
			t.Fatal(err)
		}
		all, err := s.List(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "a" || all[1].ID != "crm" || !reflect.DeepEqual(all[0], minimal) {
			t.Fatalf("list: %+v %v", all, err)
		}

		// Health: failingSince on and off, nothing else changes.
		if err := s.SetFailingSince(ctx, "crm", &t0); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get(ctx, "crm")
		want := *full
		want.FailingSince = &t0
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("failing:\n got %+v\nwant %+v", got, &want)
		}
		if err := s.SetFailingSince(ctx, "crm", nil); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Get(ctx, "crm"); got.FailingSince != nil {
			t.Fatalf("failingSince not cleared: %+v", got)
		}

		// Disable flips once.
		at := t0.Add(time.Hour)
		if ok, err := s.Disable(ctx, "crm", "gone", at); !ok || err != nil {
			t.Fatalf("disable: %v %v", ok, err)
		}
		if ok, err := s.Disable(ctx, "crm", "again", at.Add(time.Minute)); ok || err != nil {
			t.Fatalf("second disable: %v %v", ok, err)
		}
		if ok, err := s.Disable(ctx, "nope", "x", at); ok || err != nil {
			t.Fatalf("disable of a missing endpoint: %v %v", ok, err)
		}
		got, _ = s.Get(ctx, "crm")
		if got.Enabled || got.DisabledReason != "gone" || got.DisabledAt == nil || !got.DisabledAt.Equal(at) || !got.UpdatedAt.Equal(at) || got.Secret != "whsec_new" {
			t.Fatalf("disabled: %+v", got)
		}

		// Replace writes the whole endpoint, clearing what it lacks.
		re := *minimal
		re.URL, re.Events, re.Enabled, re.UpdatedAt = "https://a.example/v2", []string{"message.received"}, false, t0.Add(time.Minute)
		re.Sources = []string{"rule", "plugin"}
		if err := s.Replace(ctx, &re); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Get(ctx, "a"); !reflect.DeepEqual(got, &re) {
			t.Fatalf("replaced:\n got %+v\nwant %+v", got, &re)
		}
		re.Sources = nil
		if err := s.Replace(ctx, &re); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.Get(ctx, "a"); !reflect.DeepEqual(got, &re) {
			t.Fatalf("replaced without sources:\n got %+v\nwant %+v", got, &re)
		}
		if err := s.Replace(ctx, &webhooks.Endpoint{ID: "nope"}); !errors.Is(err, webhooks.ErrNotFound) {
			t.Fatalf("replace of a missing endpoint: %v", err)
		}

		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a"); !errors.Is(err, webhooks.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := s.Get(ctx, "a"); !errors.Is(err, webhooks.ErrNotFound) {
			t.Fatalf("get after delete: %v", err)
		}
	})
}

// TestEndpointStoreDisableIsAnnouncedOnce: of many concurrent disables of
// one endpoint exactly one reports that it flipped it.
func TestEndpointStoreDisableIsAnnouncedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		s := endpointStore(t, e)
		ctx := context.Background()
		t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		if err := s.Insert(ctx, &webhooks.Endpoint{ID: "a", URL: "https://a.example/", Enabled: true, Secret: "s", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		var flipped atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ok, err := s.Disable(ctx, "a", "down", t0.Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				if ok {
					flipped.Add(1)
				}
			})
		}
		wg.Wait()
		// FerretDB, the MongoDB tests' default server, runs a conditional
		// update as read then write, so there two may both see it enabled;
		// SQLite (and MongoDB itself) flip it once.
		if n := flipped.Load(); n != 1 && e == storetest.SQLite {
			t.Fatalf("%d disables reported flipping the endpoint, want 1", n)
		} else if n < 1 {
			t.Fatal("no disable reported flipping the endpoint")
		}
	})
}

// An endpoint stored by the first SQLite schema, before the sources
// filter, reads back after the migration with every source.
func TestSQLiteSourcesMigration(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/wildcat.db"
	first, err := fs.ReadFile(webhooks.SQLiteSchema.FS, "0001_webhook_endpoints.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1 := sqlite.Schema{Domain: webhooks.SQLiteSchema.Domain, FS: fstest.MapFS{"0001_webhook_endpoints.sql": {Data: first}}}
	db, err := sqlite.Open(ctx, sqlite.Options{Path: path, Schemas: []sqlite.Schema{v1}})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, url, events, accounts, description, headers, enabled,
			rate_limit, source, secret, created_at, updated_at) VALUES ('old', 'https://a.example/', '["*"]', '["*"]', '', '{}', 1, 0, 'api', 'whsec_a', 0, 0)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(ctx, sqlite.Options{Path: path, Schemas: []sqlite.Schema{webhooks.SQLiteSchema}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	reg := webhooks.New(webhooks.Options{Store: webhooks.NewSQLiteEndpoints(db)})
	got, err := reg.Get(ctx, "old")
	if err != nil || !reflect.DeepEqual(got.Sources, []string{"*"}) || got.Batch || got.Ordered {
		t.Fatalf("migrated endpoint: %+v %v", got, err)
	}
}

// heldList is a store whose next List, once armed, reads the endpoints,
// says so on called, and answers only when let is closed.
type heldList struct {
	webhooks.EndpointStore
	mu          sync.Mutex
	called, let chan struct{}
}

func (h *heldList) arm() (called, let chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.called, h.let = make(chan struct{}), make(chan struct{})
	return h.called, h.let
}

func (h *heldList) List(ctx context.Context) ([]*webhooks.Endpoint, error) {
	all, err := h.EndpointStore.List(ctx)
	h.mu.Lock()
	called, let := h.called, h.let
	h.called, h.let = nil, nil
	h.mu.Unlock()
	if called != nil {
		close(called)
		<-let
	}
	return all, err
}

// A Refresh whose List was read before an endpoint was created or deleted
// here leaves that endpoint as the change left it: the created one is not
// dropped, the deleted one not brought back (the fan-out missed the first,
// or fed the second, until the next Refresh).
func TestRefreshKeepsChangesMadeWhileItRead(t *testing.T) {
	st := &heldList{EndpointStore: webhooks.NewSQLiteEndpoints(storetest.NewSQLite(t, webhooks.SQLiteSchema))}
	reg := webhooks.New(webhooks.Options{Store: st, AllowPrivate: true})
	ctx := context.Background()
	create := func(id string) {
		url := "http://127.0.0.1:9/" + id
		if _, err := reg.Create(ctx, webhooks.Input{ID: &id, URL: &url}); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() []string {
		var ids []string
		for _, e := range reg.Cached() {
			ids = append(ids, e.ID)
		}
		return ids
	}
	create("old")
	called, let := st.arm()
	refreshed := make(chan error, 1)
	go func() { refreshed <- reg.Refresh(ctx) }()
	<-called // it has read [old]
	create("new")
	if err := reg.Delete(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	close(let)
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if got := cached(); !reflect.DeepEqual(got, []string{"new"}) {
		t.Fatalf("after the stale refresh: %v, want [new]", got)
	}
	if err := reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := cached(); !reflect.DeepEqual(got, []string{"new"}) {
		t.Fatalf("after a fresh refresh: %v, want [new]", got)
	}
}
