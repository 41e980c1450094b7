package daemon_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/apikeys/apikeystest"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/session/sim"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
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
// Then the same on the MongoDB engine on the tests' server (named
// ferretdb-inprocess for the in-process FerretDB, which has no target and
// whose figures say nothing about MongoDB's; mongodb with
// WILDCAT_TEST_MONGODB_URI), beside the raw driver inserting the same
// number of documents in 200-document InsertMany calls.
//
//	make bench   (or: go test -run '^$' -bench Ingest ./core/daemon/)
func BenchmarkIngest(b *testing.B) {
	const clients = 64
	httpc := &http.Client{Transport: apikeystest.Wrap(&http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients})}
	pipe := []pipeline.StageConfig{{Name: "log", Builtin: "log", Config: map[string]any{"level": "debug"}}}
	opts := daemon.Options{NoSignals: true, Sim: sim.Options{PairDelay: time.Millisecond}}

	b.Run("sqlite/rest-to-pipeline", func(b *testing.B) {
		cfg := testConfig(b, "")
		cfg.MongoDB.EmbeddedSync = "full"
		cfg.Pipeline = pipe
		d, c := benchDaemon(b, cfg, opts, "ingest")
		r := ingest(b, d, c, httpc, clients)
		before, after := r.stats[0], r.stats[1]
		commits, writes := after.Commits-before.Commits, after.Writes-before.Writes
		b.ReportMetric(float64(writes)/float64(max(commits, 1)), "writes/commit")
		b.ReportMetric(float64(writes)/float64(b.N), "writes/event")
		b.ReportMetric(float64(after.Reruns-before.Reruns), "reruns")
		b.StopTimer() // the raw limits are not part of ns/op, which sets b.N
		raw := rawSQLite(b, filepath.Join(b.TempDir(), "raw.db"), b.N, clients)
		b.ReportMetric(raw.batched, "raw-batched-rows/s")
		b.ReportMetric(raw.single, "raw-single-commits/s")
		posts := rawHTTP(b, httpc, b.N, clients)
		b.ReportMetric(posts, "raw-http-posts/s")
		b.Logf("n=%d: %.0f events/s stored and through the pipeline (REST, %d clients, sync=full; %.0f µs of CPU an event); raw SQLite %.0f rows/s in 200-row transactions, %.0f single-row commits/s; raw loopback POSTs %.0f/s",
			b.N, r.rate, clients, r.cpuPerEvent, raw.batched, raw.single, posts)
	})

	b.Run(storetest.ServerLabel()+"/rest-to-pipeline", func(b *testing.B) {
		cfg := testConfig(b, storetest.URI(b))
		cfg.Pipeline = pipe
		d, c := benchDaemon(b, cfg, opts, "ingest")
		r := ingest(b, d, c, httpc, clients)
		b.StopTimer()
		raw := rawMongo(b, b.N)
		b.ReportMetric(raw, "raw-batched-docs/s")
		b.Logf("n=%d: %.0f events/s stored and through the pipeline on %s (REST, %d clients; %.0f µs of CPU an event, the server's included when it runs in process); raw driver %.0f documents/s in 200-document InsertMany calls",
			b.N, r.rate, storetest.ServerLabel(), clients, r.cpuPerEvent, raw)
	})
}

// ingested is what one ingest run measured.
type ingested struct {
	rate, cpuPerEvent float64
	stats             [2]sqlite.Stats // the group committer's, before and after (SQLite only)
}

// ingest posts b.N sim messages to account "ingest" of d over REST from
// parallel clients, waits until every one has been through the pipeline,
// and reports events/s (through the pipeline), stored/s (every POST
// answered) and process CPU per event.
func ingest(b *testing.B, d *daemon.Daemon, c *client, httpc *http.Client, clients int) ingested {
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
	var r ingested
	if db := d.Database(); db != nil {
		r.stats[0] = db.Stats()
	}
	cpu0 := processCPU(b)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
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
	cpu := processCPU(b) - cpu0
	if db := d.Database(); db != nil {
		r.stats[1] = db.Stats()
	}
	r.rate = float64(n) / took.Seconds()
	// CPU per event (the clients' included: they run in this process) is
	// what a loaded machine leaves intact, where events/s is not.
	r.cpuPerEvent = float64(cpu.Microseconds()) / float64(n)
	b.ReportMetric(float64(n)/stored.Seconds(), "stored/s")
	b.ReportMetric(r.rate, "events/s")
	b.ReportMetric(r.cpuPerEvent, "cpu-µs/event")
	return r
}

// rawMongo inserts n message-sized documents into a fresh collection of
// the tests' server in 200-document InsertMany calls.
func rawMongo(b *testing.B, n int) float64 {
	coll := storetest.NewDatabase(b).Collection("raw")
	ctx := context.Background()
	docs := make([]any, 0, 200)
	start := time.Now()
	for i := 0; i < n; i += 200 {
		docs = docs[:0]
		for k := i; k < min(i+200, n); k++ {
			docs = append(docs, bson.M{"_id": fmt.Sprintf("r%09d", k), "accountId": "raw", "chatId": fmt.Sprintf("1555%07d@s.whatsapp.net", k%500),
				"sortKey": fmt.Sprintf("%020d", k), "type": "text", "text": "is my order 42 ready?", "fromMe": false})
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
