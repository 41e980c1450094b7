package messages_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// The history benchmarks answer issue 15's questions about the messages
// store: how long a 50-message page of one chat takes among a million
// stored messages (and the page after it, with a cursor), whether that cost
// grows with the history (10,000 vs 1,000,000), and how long applying one
// receipt takes. Every figure is printed beside the raw limit it competes
// with, measured in the same run on the same data: plain database/sql on
// the same SQLite file, the plain driver on the same MongoDB database.
//
// Latencies are p50/p99 of the benchmark's own sample (every iteration is
// timed; the sample is topped up to benchSamples when the benchmark time
// ran out first), reported as ms/page-p50, ms/page-p99, ms/receipt-p50 and
// ms/receipt-p99; ns/op is the mean.
//
// Sizes, for short runs while developing:
//
//	WILDCAT_BENCH_SQLITE_SIZES=2000,20000  the SQLite sizes, small then large (default 10000,1000000)
//	WILDCAT_BENCH_MONGODB_SIZE=500         the MongoDB size (default 2000 on the in-process FerretDB,
//	                                       1000000 against WILDCAT_TEST_MONGODB_URI)
//	WILDCAT_BENCH_SAMPLES=200              the latency sample (default 2000; 10 on FerretDB)

const (
	benchAccount = "bench"
	// Messages go round-robin to benchChats chats (fewer in a history too
	// small to give each two pages), so one chat holds 1/benchChats of
	// the history and its rows are spread over the whole table, as a busy
	// number's chats are.
	benchChats = 50
	benchPage  = 50
	// benchChatIndex is the chat whose pages are read.
	benchChatIndex = 42
)

// benchChatsOf is how many chats a history of n messages has.
func benchChatsOf(n int) int { return max(1, min(benchChats, n/(2*benchPage+1))) }

var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

// benchChat is the chat of message i of n.
func benchChat(i, n int) string { return fmt.Sprintf("1555%07d@s.whatsapp.net", i%benchChatsOf(n)) }

func benchMessageID(i int) string { return fmt.Sprintf("3EB0%018X", i) }

// benchFromMe: within every chat, ours and theirs alternate in runs of one.
func benchFromMe(i, n int) bool { return (i/benchChatsOf(n))%2 == 1 }

var benchRaw = []byte("\x0a\x1ethis is roughly a small text message proto")

// benchMessage is the i-th message of the seeded history of n: a text message,
// received or sent (then acknowledged by the server, awaiting receipts),
// already through the pipeline.
func benchMessage(i, n int) *messages.Message {
	id := benchMessageID(i)
	chat := benchChat(i, n)
	ts := benchBase + int64(i)
	fromMe := benchFromMe(i, n)
	from, kind := chat, event.KindMessageReceived
	if fromMe {
		from, kind = "15559990000@s.whatsapp.net", event.KindMessageSent
	}
	done := true
	m := &messages.Message{
		ID: messages.DocID(benchAccount, id),
		Message: event.Message{AccountID: benchAccount, MessageID: id, ChatID: chat, ChatPN: chat, From: from, FromPN: from,
			FromMe: fromMe, Timestamp: ts, Type: event.TypeText, PushName: "Customer",
			Text: fmt.Sprintf("message %d about order %d, see you at the shop", i, i%977)},
		RawMessage: benchRaw, Kind: kind, Source: event.SourcePhone,
		PipelineDone: &done,
		StoredAt:     time.Unix(ts, 0).UTC(), SortKey: messages.SortKey(ts, id),
	}
	if fromMe {
		m.Status, m.StatusRank = messages.StatusSent, event.StatusSent.Rank()
	}
	return m
}

// receipts hands out receipts for the seeded messages of ours, each to a
// message it has not moved yet, so every receipt changes a row (as a real
// one does): a random message of ours, delivered; on a second visit read,
// then played. The two halves (even and odd message numbers) are
// disjoint, for two benchmarks that update the same collection.
type receipts struct {
	n, half int
	rng     *rand.Rand
	hits    map[int]int
}

func newReceipts(n, half int) *receipts {
	return &receipts{n: n, half: half, rng: rand.New(rand.NewPCG(uint64(half), 15)), hits: map[int]int{}}
}

func (r *receipts) next() (messageID string, st event.MessageStatus) {
	for {
		i := r.rng.IntN(r.n)
		if !benchFromMe(i, r.n) || i%2 != r.half {
			continue
		}
		h := r.hits[i]
		if h >= 3 {
			continue
		}
		r.hits[i] = h + 1
		return benchMessageID(i), []event.MessageStatus{event.StatusDelivered, event.StatusRead, event.StatusPlayed}[h]
	}
}

// receipt is one status change for a seeded message of ours.
type receipt struct {
	id string
	st event.MessageStatus
	at time.Time
}

// burst hands out up to max receipts, at most one per message (they may
// be applied in any order), each moving its message one status further.
func (r *receipts) burst(max int) []receipt {
	var out []receipt
	at := time.Now()
	for i := r.half; i < r.n && len(out) < max; i += 2 {
		if !benchFromMe(i, r.n) || r.hits[i] >= 3 {
			continue
		}
		h := r.hits[i]
		r.hits[i] = h + 1
		at = at.Add(time.Millisecond)
		out = append(out, receipt{benchMessageID(i), []event.MessageStatus{event.StatusDelivered, event.StatusRead, event.StatusPlayed}[h], at})
	}
	return out
}

// burstFigures are the metrics of k receipts applied in el.
func burstFigures(k int, el time.Duration) map[string]float64 {
	return map[string]float64{"receipts": float64(k), "receipts/s": float64(k) / el.Seconds(),
		"ms/receipt": float64(el.Microseconds()) / 1000 / float64(max(k, 1))}
}

// once runs measure on a benchmark's first call and reports its metrics on
// every call, for work that can be done only once per fixture (the
// framework calls a benchmark again with a larger b.N; with the timer
// stopped those calls cost nothing).
func once(b *testing.B, measure func() map[string]float64) (m map[string]float64, first bool) {
	onceMu.Lock()
	m, ok := onceFigures[b.Name()]
	onceMu.Unlock()
	if !ok {
		m = measure()
		onceMu.Lock()
		onceFigures[b.Name()] = m
		onceMu.Unlock()
	}
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
	return m, !ok
}

var (
	onceMu      sync.Mutex
	onceFigures = map[string]map[string]float64{}
)

func benchEnvInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want positive integers separated by commas", name, v)
		}
		out = append(out, n)
	}
	if len(out) != len(def) {
		b.Fatalf("%s=%q: want %d numbers", name, v, len(def))
	}
	return out
}

// latencies is a benchmark's sample of single-operation times.
type latencies []time.Duration

// timed runs op in the benchmark loop, timing every call, then tops the
// sample up to min calls outside the benchmark's timer.
func timed(b *testing.B, min int, op func()) latencies {
	b.StartTimer() // a fixture seeded just now leaves it stopped
	lat := make(latencies, 0, min)
	for b.Loop() {
		t := time.Now()
		op()
		lat = append(lat, time.Since(t))
	}
	for len(lat) < min {
		t := time.Now()
		op()
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	return lat
}

// pct is the p-th percentile (nearest rank) in milliseconds.
func (l latencies) pct(p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(l)))) - 1
	return float64(l[max(i, 0)]) / 1e6
}

// figure is the percentiles of one measured operation.
type figure struct{ p50, p99 float64 }

// report prints the sample's p50/p99 as metrics (unit "ms/page" gives
// ms/page-p50 and ms/page-p99) and as one log line, with the ratio to the
// raw limit when there is one.
func report(b *testing.B, what, unit string, lat latencies, raw *figure) figure {
	f := figure{lat.pct(50), lat.pct(99)}
	b.ReportMetric(f.p50, unit+"-p50")
	b.ReportMetric(f.p99, unit+"-p99")
	b.ReportMetric(float64(len(lat)), "samples")
	line := fmt.Sprintf("%s: p50 %.3f ms, p99 %.3f ms over %d", what, f.p50, f.p99, len(lat))
	if raw != nil && raw.p99 > 0 {
		b.ReportMetric(f.p99/raw.p99, "x-raw-p99")
		line += fmt.Sprintf(" (raw limit p50 %.3f ms, p99 %.3f ms: %.1fx at p99)", raw.p50, raw.p99, f.p99/raw.p99)
	}
	b.Log(line)
	return f
}

// sqliteFixture is a seeded database file: the messages store on it, and
// a plain database/sql handle on the same file for the raw limits, which
// read and write raw_messages, a copy of the messages table (same columns,
// same rows, the one index the page needs).
type sqliteFixture struct {
	n        int
	dir      string
	db       *sqlite.DB
	s        *messages.Store
	raw      *sql.DB
	seedTime time.Duration
	// cursor continues after the first page of the benchmark chat;
	// cursorKey is the same position as a sort key, for the raw query.
	cursor, cursorKey string
}

func (f *sqliteFixture) close() {
	if f.raw != nil {
		_ = f.raw.Close()
	}
	if f.db != nil {
		_ = f.db.Close()
	}
	_ = os.RemoveAll(f.dir)
}

// seedBatch rows per transaction while seeding.
const seedBatch = 20_000

// seedSQLite creates a database under root holding n messages, inserted
// with the columns Insert writes, seedBatch rows per transaction through
// one prepared statement, while another goroutine encodes the rows. Each
// commit indexes its rows' text for q, as every commit does. seedTime is
// all of that.
func seedSQLite(b *testing.B, root string, n int) *sqliteFixture {
	ctx := context.Background()
	dir, err := os.MkdirTemp(root, "sqlite-")
	if err != nil {
		b.Fatal(err)
	}
	f := &sqliteFixture{n: n, dir: dir}
	// SyncFull: the daemon's default (embedded_sync: full).
	f.db, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "wildcat.db"), Sync: sqlite.SyncFull,
		Schemas: []sqlite.Schema{messages.SQLiteSchema}})
	if err != nil {
		f.close()
		b.Fatal(err)
	}
	f.s = messages.NewSQLite(f.db, nil)
	fail := func(format string, args ...any) {
		b.Helper()
		f.close()
		b.Fatalf(format, args...)
	}
	insert := `INSERT INTO messages (` + messages.SQLiteRowCols + `) VALUES (?` +
		strings.Repeat(", ?", strings.Count(messages.SQLiteRowCols, ",")) + `)`

	b.StartTimer()
	start := time.Now()
	rows := make(chan []any, 4096)
	go func() {
		defer close(rows)
		for i := range n {
			args, err := messages.SQLiteRowArgs(benchMessage(i, n))
			if err != nil {
				panic(err)
			}
			rows <- args
		}
	}()
	for lo := 0; lo < n; lo += seedBatch {
		err := f.db.Write(ctx, func(tx *sql.Tx) error {
			stmt, err := tx.PrepareContext(ctx, insert)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for range min(seedBatch, n-lo) {
				if _, err := stmt.ExecContext(ctx, <-rows...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			for range rows { // let the encoder finish
			}
			fail("seed: %v", err)
		}
	}
	f.seedTime = time.Since(start)
	b.StopTimer()
	return f
}

// prepare makes the fixture ready for the page and receipt benchmarks:
// the raw side's handle and table, and the cursor after the first page.
func (f *sqliteFixture) prepare(b *testing.B) {
	ctx := context.Background()
	fail := func(format string, args ...any) {
		b.Helper()
		f.close()
		b.Fatalf(format, args...)
	}
	// The raw side: database/sql and the driver, no Wildcat code; the
	// daemon's pragmas.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(full)")
	q.Add("_pragma", "busy_timeout(10000)")
	var err error
	if f.raw, err = sql.Open("sqlite", "file:"+filepath.Join(f.dir, "wildcat.db")+"?"+q.Encode()); err != nil {
		fail("%v", err)
	}
	f.raw.SetMaxOpenConns(1)
	var ddl string
	if err := f.raw.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'`).Scan(&ddl); err != nil {
		fail("%v", err)
	}
	for _, stmt := range []string{
		strings.Replace(ddl, "CREATE TABLE messages", "CREATE TABLE raw_messages", 1),
		`INSERT INTO raw_messages SELECT * FROM messages`,
		`CREATE INDEX raw_messages_account_chat_order ON raw_messages (account_id, chat_id, sort_key)`,
	} {
		if _, err := f.raw.Exec(stmt); err != nil {
			fail("raw table: %v", err)
		}
	}
	p, err := f.s.History(ctx, benchQuery(f.n))
	if err != nil || len(p.Messages) != benchPage || p.NextCursor == "" {
		fail("first page of %d messages: %d messages, cursor %q, %v", f.n, len(p.Messages), p.NextCursor, err)
	}
	f.cursor, f.cursorKey = p.NextCursor, p.Messages[benchPage-1].SortKey
}

// benchQuery asks for the first page of the chat read in a history of n.
func benchQuery(n int) messages.Query {
	return messages.Query{AccountID: benchAccount, ChatID: benchChat(benchChatIndex, n), Limit: benchPage}
}

// rawPage is the raw limit of a history page: the same rows, columns and
// order as the store's query, scanned without decoding doc.
func rawPage(b *testing.B, db *sql.DB, n int, before string) {
	q := `SELECT seq, raw, status, status_rank, status_at, error, pipeline_done, doc FROM raw_messages
		WHERE account_id = ? AND chat_id = ?`
	args := []any{benchAccount, benchChat(benchChatIndex, n)}
	if before != "" {
		q, args = q+` AND sort_key < ?`, append(args, before)
	}
	rows, err := db.Query(q+` ORDER BY sort_key DESC LIMIT ?`, append(args, benchPage+1)...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var (
		seq, rank         int64
		statusAt, done    sql.NullInt64
		raw               []byte
		status, errt, doc string
		got               int
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &raw, &status, &rank, &statusAt, &errt, &done, &doc); err != nil {
			b.Fatal(err)
		}
		got++
	}
	if err := rows.Err(); err != nil || got != benchPage+1 {
		b.Fatalf("raw page: %d rows, %v", got, err)
	}
}

func storePage(b *testing.B, s *messages.Store, n int, cursor string) {
	q := benchQuery(n)
	q.Cursor = cursor
	p, err := s.History(context.Background(), q)
	if err != nil || len(p.Messages) != benchPage || p.NextCursor == "" {
		b.Fatalf("page: %d messages, %v", len(p.Messages), err)
	}
}

func statusEventFor(messageID string, st event.MessageStatus, at time.Time) *event.Event {
	return &event.Event{
		ID: event.StatusEventID(benchAccount, messageID, st, ""), Kind: event.KindMessageStatus, AccountID: benchAccount,
		Timestamp: at, Source: event.SourcePhone,
		Status: &event.Status{MessageID: messageID, Status: st, ChatID: benchChat(0, 1)},
	}
}

// BenchmarkHistorySQLite: the embedded engine, at a small and a large
// history (10,000 and 1,000,000 messages unless WILDCAT_BENCH_SQLITE_SIZES
// says otherwise). Per size: seeding, the first page and the page after it
// (raw SQL, then the store), a receipt (the raw UPDATE, then
// Store.ApplyStatus). The large size's page lines add the ratio of their
// percentiles to the small size's (x-p50-vs-small, x-p99-vs-small).
func BenchmarkHistorySQLite(b *testing.B) {
	sizes := benchEnvInts(b, "WILDCAT_BENCH_SQLITE_SIZES", []int{10_000, 1_000_000})
	small := sizes[0]
	if least := 2*benchPage + 1; small < least {
		b.Fatalf("WILDCAT_BENCH_SQLITE_SIZES: %d messages are too few for two pages; at least %d", small, least)
	}
	samples := benchEnvInts(b, "WILDCAT_BENCH_SAMPLES", []int{2000})[0]
	root := b.TempDir()
	fixtures := map[int]*sqliteFixture{}
	b.Cleanup(func() {
		for _, f := range fixtures {
			f.close()
		}
	})
	fixture := func(b *testing.B, n int) *sqliteFixture {
		if fixtures[n] == nil {
			f := seedSQLite(b, root, n)
			f.prepare(b)
			fixtures[n] = f
		}
		return fixtures[n]
	}
	figures := map[string]figure{} // "n/name"
	ctx := context.Background()
	// One generator per size and half, shared by the sequential and the
	// concurrent receipt benchmarks, so every receipt still moves its row.
	gens := map[[2]int]*receipts{}
	gen := func(n, half int) *receipts {
		if gens[[2]int{n, half}] == nil {
			gens[[2]int{n, half}] = newReceipts(n, half)
		}
		return gens[[2]int{n, half}]
	}

	for _, n := range sizes {
		name := func(s string) string { return fmt.Sprintf("n=%d/%s", n, s) }
		b.Run(name("seed"), func(b *testing.B) {
			// One op seeds a fresh database of n messages; the last one
			// seeded is the one the benchmarks below read.
			b.StopTimer() // seedSQLite times the load only
			var total time.Duration
			for range b.N {
				if old := fixtures[n]; old != nil {
					old.close()
					delete(fixtures, n)
				}
				f := seedSQLite(b, root, n)
				total += f.seedTime
				f.prepare(b)
				fixtures[n] = f
			}
			rate := float64(n*b.N) / total.Seconds()
			b.ReportMetric(rate, "rows/s")
			b.Logf("seeded %d messages in %s: %.0f rows/s (%d rows a transaction, each commit indexing its rows' text)",
				n, (total / time.Duration(b.N)).Round(time.Millisecond), rate, seedBatch)
		})
		pages := []struct{ page, cursor string }{{"page50", ""}, {"page50-cursor", "cursor"}}
		for _, pg := range pages {
			b.Run(name(pg.page+"/raw-sql"), func(b *testing.B) {
				f := fixture(b, n)
				before := ""
				if pg.cursor != "" {
					before = f.cursorKey
				}
				lat := timed(b, samples, func() { rawPage(b, f.raw, n, before) })
				figures[name(pg.page+"/raw-sql")] = report(b, fmt.Sprintf("%s of %d, raw database/sql", pg.page, n), "ms/page", lat, nil)
			})
			b.Run(name(pg.page+"/store"), func(b *testing.B) {
				f := fixture(b, n)
				cursor := ""
				if pg.cursor != "" {
					cursor = f.cursor
				}
				lat := timed(b, samples, func() { storePage(b, f.s, n, cursor) })
				raw, ok := figures[name(pg.page+"/raw-sql")]
				fig := report(b, fmt.Sprintf("%s of %d, Store.History", pg.page, n), "ms/page", lat, ifOK(raw, ok))
				figures[name(pg.page+"/store")] = fig
				if s, ok := figures[fmt.Sprintf("n=%d/%s/store", small, pg.page)]; ok && n != small {
					b.ReportMetric(fig.p50/s.p50, "x-p50-vs-small")
					b.ReportMetric(fig.p99/s.p99, "x-p99-vs-small")
					b.Logf("%s at %d vs %d messages: p50 %.2fx, p99 %.2fx (target <= 2)", pg.page, n, small, fig.p50/s.p50, fig.p99/s.p99)
				}
			})
		}
		b.Run(name("receipt/raw-sql"), func(b *testing.B) {
			f := fixture(b, n)
			r := gen(n, 0)
			at := time.Now()
			lat := timed(b, samples, func() {
				id, st := r.next()
				at = at.Add(time.Millisecond)
				res, err := f.raw.Exec(`UPDATE raw_messages SET status = ?, status_rank = ?, status_at = ? WHERE id = ? AND status_rank < ?`,
					string(st), st.Rank(), at.UnixMilli(), messages.DocID(benchAccount, id), st.Rank())
				if err != nil {
					b.Fatal(err)
				}
				if k, _ := res.RowsAffected(); k != 1 {
					b.Fatalf("raw receipt %s %s changed %d rows", id, st, k)
				}
			})
			figures[name("receipt/raw-sql")] = report(b, fmt.Sprintf("receipt at %d, raw UPDATE (synchronous=FULL)", n), "ms/receipt", lat, nil)
		})
		b.Run(name("receipt/store"), func(b *testing.B) {
			f := fixture(b, n)
			r := gen(n, 1)
			at := time.Now()
			lat := timed(b, samples, func() {
				id, st := r.next()
				at = at.Add(time.Millisecond)
				applied, err := f.s.ApplyStatus(ctx, statusEventFor(id, st, at))
				if err != nil || !applied {
					b.Fatalf("receipt %s %s: applied %v, %v", id, st, applied, err)
				}
			})
			raw, ok := figures[name("receipt/raw-sql")]
			report(b, fmt.Sprintf("receipt at %d, Store.ApplyStatus (embedded_sync: full)", n), "ms/receipt", lat, ifOK(raw, ok))
		})
		// Receipts come in bursts (a read receipt per message of a chat,
		// many chats at once): with 64 at a time the group commit shares
		// each fsync among them. The figure is wall time per receipt,
		// beside raw UPDATEs in 200-row transactions. Each runs one burst
		// of up to `samples` receipts (once: a message takes only three).
		b.Run(name("receipts-batched/raw-sql"), func(b *testing.B) {
			b.StopTimer()
			m, first := once(b, func() map[string]float64 {
				f := fixture(b, n)
				burst := gen(n, 0).burst(samples)
				start := time.Now()
				for lo := 0; lo < len(burst); lo += 200 {
					tx, err := f.raw.Begin()
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range burst[lo:min(lo+200, len(burst))] {
						if _, err := tx.Exec(`UPDATE raw_messages SET status = ?, status_rank = ?, status_at = ? WHERE id = ? AND status_rank < ?`,
							string(r.st), r.st.Rank(), r.at.UnixMilli(), messages.DocID(benchAccount, r.id), r.st.Rank()); err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				return burstFigures(len(burst), time.Since(start))
			})
			figures[name("receipts-batched/raw-sql")] = figure{p50: m["ms/receipt"]}
			if !first {
				return
			}
			b.Logf("%.0f receipts at %d, raw UPDATEs in 200-row transactions: %.0f/s, %.3f ms a receipt", m["receipts"], n, m["receipts/s"], m["ms/receipt"])
		})
		b.Run(name("receipts-concurrent/store"), func(b *testing.B) {
			b.StopTimer()
			m, first := once(b, func() map[string]float64 {
				f := fixture(b, n)
				burst := gen(n, 1).burst(samples)
				const parallel = 64
				var next atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range parallel {
					wg.Go(func() {
						for i := next.Add(1) - 1; i < int64(len(burst)); i = next.Add(1) - 1 {
							r := burst[i]
							if applied, err := f.s.ApplyStatus(ctx, statusEventFor(r.id, r.st, r.at)); err != nil || !applied {
								b.Errorf("receipt %s %s: applied %v, %v", r.id, r.st, applied, err)
								return
							}
						}
					})
				}
				wg.Wait()
				return burstFigures(len(burst), time.Since(start))
			})
			if !first {
				return
			}
			line := fmt.Sprintf("%.0f receipts at %d, Store.ApplyStatus from 64 goroutines (embedded_sync: full): %.0f/s, %.3f ms a receipt", m["receipts"], n, m["receipts/s"], m["ms/receipt"])
			if raw, ok := figures[name("receipts-batched/raw-sql")]; ok {
				line += fmt.Sprintf(" (raw limit %.3f ms a receipt)", raw.p50)
			}
			b.Log(line)
		})
	}
}

func ifOK(f figure, ok bool) *figure {
	if !ok {
		return nil
	}
	return &f
}

// BenchmarkHistoryMongoDB: the MongoDB engine on the tests' server. By
// default that is the in-process FerretDB (named ferretdb-inprocess in the
// benchmark), which answers these filters by scanning and decoding every
// document, so its figures say nothing about MongoDB's and it is measured at
// a size it can take (2,000 messages). With WILDCAT_TEST_MONGODB_URI set the
// server is a real one (named mongodb) and the size is 1,000,000.
func BenchmarkHistoryMongoDB(b *testing.B) {
	label, n, samples := storetest.ServerLabel(), 2000, 10
	if label == "mongodb" {
		n, samples = 1_000_000, 2000
	}
	n = benchEnvInts(b, "WILDCAT_BENCH_MONGODB_SIZE", []int{n})[0]
	samples = benchEnvInts(b, "WILDCAT_BENCH_SAMPLES", []int{samples})[0]
	ctx := context.Background()

	var (
		db       *mongo.Database
		s        *messages.Store
		cursor   string
		cursorKy string
		parent   = b
	)
	seed := func(b *testing.B) time.Duration {
		db = storetest.NewDatabase(parent) // dropped when the benchmark ends
		c := db.Collection(store.Messages)
		for _, ix := range []mongo.IndexModel{
			{Keys: bson.D{{Key: "accountId", Value: 1}, {Key: "chatId", Value: 1}, {Key: "sortKey", Value: -1}}},
			{Keys: bson.D{{Key: "accountId", Value: 1}, {Key: "sortKey", Value: -1}}},
		} {
			// One per command: FerretDB cannot take several at once.
			if _, err := c.Indexes().CreateOne(ctx, ix); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		const batch = 5_000
		docs := make([]any, 0, batch)
		for i := range n {
			docs = append(docs, benchMessage(i, n))
			if len(docs) == batch || i == n-1 {
				if _, err := c.InsertMany(ctx, docs); err != nil {
					b.Fatal(err)
				}
				docs = docs[:0]
			}
		}
		took := time.Since(start)
		s = messages.New(db, nil)
		p, err := s.History(ctx, benchQuery(n))
		if err != nil || len(p.Messages) != benchPage || p.NextCursor == "" {
			b.Fatalf("first page of %d messages: %v", n, err)
		}
		cursor, cursorKy = p.NextCursor, p.Messages[benchPage-1].SortKey
		return took
	}
	name := func(s string) string { return fmt.Sprintf("%s/n=%d/%s", label, n, s) }
	ready := func(b *testing.B) {
		if db == nil {
			seed(b)
		}
	}
	b.Run(name("seed"), func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += seed(b)
		}
		rate := float64(n*b.N) / total.Seconds()
		b.ReportMetric(rate, "rows/s")
		b.Logf("%s: seeded %d messages in %s: %.0f rows/s", label, n, (total / time.Duration(b.N)).Round(time.Millisecond), rate)
	})
	figures := map[string]figure{}
	for _, pg := range []struct{ page, cursor string }{{"page50", ""}, {"page50-cursor", "cursor"}} {
		b.Run(name(pg.page+"/raw-driver"), func(b *testing.B) {
			ready(b)
			f := bson.D{{Key: "accountId", Value: benchAccount}, {Key: "chatId", Value: benchChat(benchChatIndex, n)}}
			if pg.cursor != "" {
				f = append(f, bson.E{Key: "sortKey", Value: bson.D{{Key: "$lt", Value: cursorKy}}})
			}
			o := options.Find().SetSort(bson.D{{Key: "sortKey", Value: -1}}).SetLimit(benchPage + 1)
			c := db.Collection(store.Messages)
			lat := timed(b, samples, func() {
				cur, err := c.Find(ctx, f, o)
				if err != nil {
					b.Fatal(err)
				}
				var out []bson.Raw
				if err := cur.All(ctx, &out); err != nil || len(out) != benchPage+1 {
					b.Fatalf("raw page: %d documents, %v", len(out), err)
				}
			})
			figures[pg.page] = report(b, fmt.Sprintf("%s: %s of %d, raw driver (bson.Raw)", label, pg.page, n), "ms/page", lat, nil)
		})
		b.Run(name(pg.page+"/store"), func(b *testing.B) {
			ready(b)
			c := ""
			if pg.cursor != "" {
				c = cursor
			}
			lat := timed(b, samples, func() { storePage(b, s, n, c) })
			raw, ok := figures[pg.page]
			report(b, fmt.Sprintf("%s: %s of %d, Store.History", label, pg.page, n), "ms/page", lat, ifOK(raw, ok))
		})
	}
	b.Run(name("receipt/raw-driver"), func(b *testing.B) {
		ready(b)
		c := db.Collection(store.Messages)
		r := newReceipts(n, 0)
		at := time.Now()
		lat := timed(b, samples, func() {
			id, st := r.next()
			at = at.Add(time.Millisecond)
			res, err := c.UpdateOne(ctx,
				bson.D{{Key: "_id", Value: messages.DocID(benchAccount, id)}, {Key: "statusRank", Value: bson.D{{Key: "$lt", Value: st.Rank()}}}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: string(st)}, {Key: "statusRank", Value: st.Rank()}, {Key: "statusAt", Value: at}}}})
			if err != nil || res.ModifiedCount != 1 {
				b.Fatalf("raw receipt %s %s: %v %v", id, st, res, err)
			}
		})
		figures["receipt"] = report(b, fmt.Sprintf("%s: receipt at %d, raw UpdateOne", label, n), "ms/receipt", lat, nil)
	})
	b.Run(name("receipt/store"), func(b *testing.B) {
		ready(b)
		// The other half of the messages than the raw driver's.
		r := newReceipts(n, 1)
		at := time.Now()
		lat := timed(b, samples, func() {
			id, st := r.next()
			at = at.Add(time.Millisecond)
			applied, err := s.ApplyStatus(ctx, statusEventFor(id, st, at))
			if err != nil || !applied {
				b.Fatalf("receipt %s %s: applied %v, %v", id, st, applied, err)
			}
		})
		raw, ok := figures["receipt"]
		report(b, fmt.Sprintf("%s: receipt at %d, Store.ApplyStatus", label, n), "ms/receipt", lat, ifOK(raw, ok))
	})
}
