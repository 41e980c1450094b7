package messages

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The pipeline's trace of a message's event is kept on the message (SQLite:
// the trace and trace_at columns; MongoDB: the trace and traceAt fields),
// written by the done mark's own update, so tracing costs no write, and
// cleared by PurgeTraces after outbox.retention, like the event's delivered
// jobs. It is stored as the JSON the pipeline encoded, sealed as the text
// is when encryption at rest is on; this package does not read it.

// ErrNoTrace: the message is stored but has no trace (it was not through
// the pipeline yet, it was stored before traces were, or its trace expired).
var ErrNoTrace = errors.New("message has no pipeline trace")

const markProcessedTracedSQL = `UPDATE messages SET pipeline_done = 1, pipeline_at = ?1, trace = ?2, trace_at = ?1 WHERE id = ?3`

// MarkProcessedTraced is MarkProcessed that also stores the event's trace
// (JSON) in the same update.
func (s *Store) MarkProcessedTraced(ctx context.Context, eventID string, trace []byte) error {
	sealed, err := s.keys.SealString(string(trace))
	if err != nil {
		return fmt.Errorf("seal trace of %s: %w", eventID, err)
	}
	at := s.now().UTC()
	switch b := s.engine().(type) {
	case *sqliteBackend:
		_, err = b.exec(ctx, markProcessedTracedSQL, at.UnixMilli(), sealed, eventID)
	case *mongoBackend:
		err = b.markProcessedTraced(ctx, eventID, at, sealed)
	default:
		err = s.b.MarkProcessed(ctx, eventID, at)
	}
	if err != nil {
		return fmt.Errorf("mark event %s processed: %w", eventID, err)
	}
	return nil
}

// Trace returns the stored trace (JSON) of a message's event and when it
// was stored: ErrNotFound when there is no such message, ErrNoTrace when it
// has no trace.
func (s *Store) Trace(ctx context.Context, accountID, messageID string) ([]byte, time.Time, error) {
	id := DocID(accountID, messageID)
	var (
		trace string
		at    time.Time
		err   error
	)
	switch b := s.engine().(type) {
	case *sqliteBackend:
		trace, at, err = b.trace(ctx, id)
	case *mongoBackend:
		trace, at, err = b.trace(ctx, id)
	default:
		err = ErrNoTrace
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	if trace == "" {
		return nil, time.Time{}, ErrNoTrace
	}
	plain, err := s.keys.OpenString(trace)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("open trace of %s: %w", id, err)
	}
	return []byte(plain), at, nil
}

// PurgeTraces clears the traces stored before before and reports how many.
func (s *Store) PurgeTraces(ctx context.Context, before time.Time) (int64, error) {
	var (
		n   int64
		err error
	)
	switch b := s.engine().(type) {
	case *sqliteBackend:
		n, err = b.purgeTraces(ctx, before)
	case *mongoBackend:
		n, err = b.purgeTraces(ctx, before)
	}
	if err != nil {
		return n, fmt.Errorf("purge pipeline traces: %w", err)
	}
	return n, nil
}

func (b *sqliteBackend) trace(ctx context.Context, id string) (string, time.Time, error) {
	var (
		trace sql.NullString
		at    sql.NullInt64
	)
	err := b.db.Reader().QueryRowContext(ctx, `SELECT trace, trace_at FROM messages WHERE id = ?`, id).Scan(&trace, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read trace of %s: %w", id, err)
	}
	return trace.String, time.UnixMilli(at.Int64).UTC(), nil
}

// purgeTraceChunk bounds one purge transaction, so the sweep never holds
// the writer long.
const purgeTraceChunk = 1000

func (b *sqliteBackend) purgeTraces(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		n, err := b.exec(ctx, `UPDATE messages SET trace = NULL, trace_at = NULL WHERE seq IN (
			SELECT seq FROM messages WHERE trace_at IS NOT NULL AND trace_at < ? LIMIT ?)`, before.UnixMilli(), purgeTraceChunk)
		total += n
		if err != nil || n < purgeTraceChunk {
			return total, err
		}
	}
}

func (b *mongoBackend) markProcessedTraced(ctx context.Context, id string, at time.Time, trace string) error {
	// As MarkProcessed: the lock keeps FerretDB's read-modify-write from
	// undoing a concurrent update of the document.
	defer b.locks.lock(id)()
	return b.writes.Do(ctx, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).
		SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "pipelineDone", Value: true}, {Key: "pipelineAt", Value: at},
			{Key: "trace", Value: trace}, {Key: "traceAt", Value: at}}}}))
}

func (b *mongoBackend) trace(ctx context.Context, id string) (string, time.Time, error) {
	var doc struct {
		Trace   string    `bson:"trace"`
		TraceAt time.Time `bson:"traceAt"`
	}
	err := b.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "trace", Value: 1}, {Key: "traceAt", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read trace of %s: %w", id, err)
	}
	return doc.Trace, doc.TraceAt.UTC(), nil
}

func (b *mongoBackend) purgeTraces(ctx context.Context, before time.Time) (int64, error) {
	res, err := b.c.UpdateMany(ctx, bson.D{{Key: "traceAt", Value: bson.D{{Key: "$lt", Value: before}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "trace", Value: ""}, {Key: "traceAt", Value: ""}}}})
	if err != nil {
		return 0, err
	}
	return res.ModifiedCount, nil
}

// markDoneSQL builds the done mark's one UPDATE: the mark, and as the
// event has them its trace and its tags and annotations merged into the
// stored document. One statement (and one parse of the document) instead
// of one per part; the pipeline writes it for every event.
func markDoneSQL(trace, tags, annotations bool) string {
	set := []string{"pipeline_done = 1", "pipeline_at = ?1"}
	if trace {
		set = append(set, "trace = ?2", "trace_at = ?1")
	}
	var paths []string
	if tags {
		// Most stored messages have no tags yet: then the new ones are
		// set as they are, without the merge's subqueries (half the
		// statement's cost).
		paths = append(paths, `'$.tags', CASE WHEN json_type(doc, '$.tags') IS NULL THEN json(?3) ELSE json((SELECT json_group_array(value) FROM (
			SELECT value FROM json_each(doc, '$.tags')
			UNION ALL
			SELECT n.value FROM json_each(?3) AS n WHERE n.value NOT IN (SELECT value FROM json_each(doc, '$.tags'))))) END`)
	}
	if annotations {
		paths = append(paths, `'$.annotations', json_patch(coalesce(json_extract(doc, '$.annotations'), '{}'), ?4)`)
	}
	if len(paths) > 0 {
		set = append(set, "doc = json_set(doc, "+strings.Join(paths, ", ")+")")
	}
	return "UPDATE messages SET " + strings.Join(set, ", ") + " WHERE id = ?5"
}

// markDoneSQLs holds every variant of markDoneSQL, indexed by
// trace | tags<<1 | annotations<<2, so each stays one prepared statement.
var markDoneSQLs = func() (v [8]string) {
	for i := range v {
		v[i] = markDoneSQL(i&1 != 0, i&2 != 0, i&4 != 0)
	}
	return v
}()

// DoneMark is the pipeline's done mark of one event on SQLite, prepared by
// PrepareDone outside the transaction it is written in, so encoding and
// sealing are not done by the one writer every event waits for.
type DoneMark struct {
	b       *sqliteBackend
	eventID string
	sql     string
	args    [5]any
}

// PrepareDone prepares the done mark of eventID: the mark, the event's
// trace (nil: none) and the tags and annotations its stages added, merged
// into the stored message as AnnotateTx would — one statement. ErrNoTx on
// an engine other than SQLite.
func (s *Store) PrepareDone(eventID string, tags []string, annotations map[string]string, trace []byte) (*DoneMark, error) {
	b, ok := s.engine().(*sqliteBackend)
	if !ok {
		return nil, ErrNoTx
	}
	if err := CheckAnnotations(annotations); err != nil {
		return nil, fmt.Errorf("annotate %s: %w", eventID, err)
	}
	m := &DoneMark{b: b, eventID: eventID}
	variant := 0
	if trace != nil {
		sealed, err := s.keys.SealString(string(trace))
		if err != nil {
			return nil, fmt.Errorf("seal trace of %s: %w", eventID, err)
		}
		m.args[1], variant = sealed, variant|1
	}
	if len(tags) > 0 {
		js, err := json.Marshal(tags)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", eventID, err)
		}
		m.args[2], variant = string(js), variant|2
	}
	if len(annotations) > 0 {
		js, err := json.Marshal(annotations)
		if err != nil {
			return nil, fmt.Errorf("annotations of %s: %w", eventID, err)
		}
		m.args[3], variant = string(js), variant|4
	}
	m.args[0], m.args[4] = s.now().UTC().UnixMilli(), eventID
	m.sql = markDoneSQLs[variant]
	return m, nil
}

// Tx writes the mark in tx, a transaction of the caller's own Write.
func (m *DoneMark) Tx(ctx context.Context, tx *sql.Tx) error {
	// Unused numbered parameters are bound and ignored, so every variant
	// takes the same five.
	if _, err := m.b.db.Exec(ctx, tx, m.sql, m.args[:]...); err != nil {
		return fmt.Errorf("mark event %s processed: %w", m.eventID, err)
	}
	return nil
}
