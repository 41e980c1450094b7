package daemon_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/session/sim"
)

// BenchmarkIngest measures what the storage issue asks of the embedded
// engine: sim messages posted over REST (64 clients, keep-alive) until each
// is stored and through the pipeline (one inline stage, no sink), on the
// daemon's own SQLite database with embedded_sync: full — beside, in the
// same run and on the same disk:
//
//   - raw-batched: the same number of rows inserted by database/sql into a
//     plain table in 200-row transactions (the ceiling of any durable
//     store here);
//
//   - raw-single: one row per commit from 64 goroutines (what a store that
//     does not batch gets);
//
//   - raw-http: empty POSTs to a loopback server with the same clients (the
//     ceiling of the REST path).
//
//     make bench   (or: go test -run '^$' -bench Ingest ./core/daemon/)
func BenchmarkIngest(b *testing.B) {
	const clients = 64
	cfg := testConfig(b, "")
	cfg.MongoDB.EmbeddedSync = "full"
	cfg.Pipeline = []pipeline.StageConfig{
		{Name: "log", Builtin: "log", Config: map[string]any{"level": "debug"}},
	}
	d, c := benchDaemon(b, cfg, daemon.Options{NoSignals: true, Sim: sim.Options{PairDelay: time.Millisecond}}, "ingest")
	httpc := &http.Client{Transport: apikeystest.Wrap(&http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients})}
	var seq atomic.Int64

	b.Run("rest-to-pipeline", func(b *testing.B) {
		n := b.N
		through := make(chan struct{})
		var seen atomic.Int64
		sub, _, _ := d.Events().Subscribe(func(ev *event.Event) bool {
			return ev.AccountID == "ingest" && ev.Kind == event.KindMessageReceived
		}, "")
		defer sub.Close()
		go func() {
			for range sub.C {
				if seen.Add(1) == int64(n) {
					close(through)
				}
			}
		}()
		url := c.base + "/v1/accounts/ingest/sim/inbound"
		before := d.Database().Stats()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					i := seq.Add(1)
					body := fmt.Sprintf(`{"from":"+1555%07d","id":"I%09d","text":"is my order %d ready?"}`, i%500, i, i%977)
					resp, err := httpc.Post(url, "application/json", bytes.NewBufferString(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("inject: %d", resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		stored := time.Since(start)
		select {
		case <-through:
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d of %d events through the pipeline (lagged: %v)", seen.Load(), n, sub.Lagged())
		}
		took := time.Since(start)
		after := d.Database().Stats()
		commits, writes := after.Commits-before.Commits, after.Writes-before.Writes
		b.ReportMetric(float64(writes)/float64(max(commits, 1)), "writes/commit")
		b.ReportMetric(float64(writes)/float64(n), "writes/event")
		b.ReportMetric(float64(after.Reruns-before.Reruns), "reruns")
		b.ReportMetric(float64(n)/stored.Seconds(), "stored/s")
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		raw := rawSQLite(b, filepath.Join(b.TempDir(), "raw.db"), n, clients)
		b.ReportMetric(raw.batched, "raw-batched-rows/s")
		b.ReportMetric(raw.single, "raw-single-commits/s")
		posts := rawHTTP(b, httpc, n, clients)
		b.ReportMetric(posts, "raw-http-posts/s")
		b.Logf("n=%d: %.0f events/s stored and through the pipeline (REST, %d clients, sync=full); raw SQLite %.0f rows/s in 200-row transactions, %.0f single-row commits/s; raw loopback POSTs %.0f/s",
			n, float64(n)/took.Seconds(), clients, raw.batched, raw.single, posts)
	})
}

type rawRates struct{ batched, single float64 }

// rawSQLite inserts n message-sized rows into a plain table with the same
// pragmas as the daemon's database: in 200-row transactions, then one row
// per commit from parallel goroutines (at most 2,000 of those: they are
// slow by nature).
func rawSQLite(b *testing.B, path string, n, parallel int) rawRates {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE m (id TEXT PRIMARY KEY, account TEXT, chat TEXT, sort_key TEXT, doc TEXT) STRICT;
		CREATE INDEX m_chat ON m (account, chat, sort_key)`); err != nil {
		b.Fatal(err)
	}
	doc := `{"accountId":"raw","chatId":"15550000001@s.whatsapp.net","type":"text","text":"is my order 42 ready?","fromMe":false}`
	insert := func(tx interface {
		Exec(string, ...any) (sql.Result, error)
	}, i int) {
		if _, err := tx.Exec(`INSERT INTO m VALUES (?, 'raw', ?, ?, ?)`, fmt.Sprintf("r%09d", i), fmt.Sprintf("1555%07d", i%500), fmt.Sprintf("%020d", i), doc); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for i := 0; i < n; i += 200 {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		for k := i; k < min(i+200, n); k++ {
			insert(tx, k)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	batched := float64(n) / time.Since(start).Seconds()
	singles := min(n, 2000)
	var next atomic.Int64
	start = time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(singles) {
					return
				}
				insert(db, n+int(i))
			}
		})
	}
	wg.Wait()
	return rawRates{batched: batched, single: float64(singles) / time.Since(start).Seconds()}
}

// rawHTTP posts n small bodies to a loopback server that only reads them.
func rawHTTP(b *testing.B, c *http.Client, n, parallel int) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	url := "http://" + l.Addr().String() + "/"
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := c.Post(url, "application/json", bytes.NewBufferString(`{"from":"+15550000001","text":"hi"}`))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}
