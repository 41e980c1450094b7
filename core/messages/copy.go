package messages

import (
	"context"
	"time"
)

// The engine-to-engine copy (wildcatd store copy, package storecopy) moves
// messages, their pipeline traces, chats and idempotency records exactly as
// stored: ids, statuses, edit histories, tags, pipeline-done marks,
// timestamps, sealed values. Each engine's side
// is in copy_mongo.go and copy_sqlite.go; these adapters give the storecopy
// package a Count/Export/Import set per kind.

// copyBackend is what a Backend offers the copy.
type copyBackend interface {
	// CountMessages counts every stored message.
	CountMessages(ctx context.Context) (int64, error)
	// ExportMessages hands every message to fn in batches, in stored order
	// (so the target's stored order is the source's).
	ExportMessages(ctx context.Context, batch int, fn func([]*Message) error) error
	// ImportMessages stores ms with their ids, replacing a stored message
	// with the same id; chats are not touched (they are copied as chats).
	ImportMessages(ctx context.Context, ms []*Message) error
	CountChats(ctx context.Context) (int64, error)
	// ExportChats hands every chat to fn in batches.
	ExportChats(ctx context.Context, batch int, fn func([]*Chat) error) error
	// ImportChats stores cs, replacing a stored chat with the same id.
	ImportChats(ctx context.Context, cs []*Chat) error
	// CountTraces counts the messages with a pipeline trace.
	CountTraces(ctx context.Context) (int64, error)
	// ExportTraces hands every stored trace to fn in batches, by message
	// id.
	ExportTraces(ctx context.Context, batch int, fn func([]*TraceRecord) error) error
	// ImportTraces sets each trace (and its time) on the stored message
	// with its id, and reports how many it set: a trace whose message is
	// not stored is skipped, as a trace alone is never read.
	ImportTraces(ctx context.Context, ts []*TraceRecord) (int64, error)
}

// TraceRecord is one message's pipeline trace for a copy: the trace as
// stored (sealed when encryption at rest was on when it was written) and
// when it was stored. A Message does not carry it (it is kept beside the
// message, see trace.go), so it travels as a kind of its own, after the
// messages.
type TraceRecord struct {
	ID    string    `bson:"_id"`
	Trace string    `bson:"trace"`
	At    time.Time `bson:"traceAt"`
}

// MessageRecords is the store's messages for a copy.
type MessageRecords struct{ b Backend }

// MessageRecords returns the store's messages for a copy.
func (s *Store) MessageRecords() MessageRecords { return MessageRecords{s.b} }

func (r MessageRecords) Count(ctx context.Context) (int64, error) { return r.b.CountMessages(ctx) }
func (r MessageRecords) Export(ctx context.Context, batch int, fn func([]*Message) error) error {
	return r.b.ExportMessages(ctx, batch, fn)
}
func (r MessageRecords) Import(ctx context.Context, ms []*Message) error {
	return r.b.ImportMessages(ctx, ms)
}

// TraceRecords is the store's pipeline traces for a copy, as stored
// (beneath any sealing: a sealed trace travels sealed).
type TraceRecords struct{ b Backend }

// TraceRecords returns the store's traces for a copy.
func (s *Store) TraceRecords() TraceRecords { return TraceRecords{s.engine()} }

func (r TraceRecords) Count(ctx context.Context) (int64, error) { return r.b.CountTraces(ctx) }
func (r TraceRecords) Export(ctx context.Context, batch int, fn func([]*TraceRecord) error) error {
	return r.b.ExportTraces(ctx, batch, fn)
}

// Import sets the traces on the stored messages with their ids and reports
// how many it set; one whose message is not stored is skipped.
func (r TraceRecords) Import(ctx context.Context, ts []*TraceRecord) (int64, error) {
	return r.b.ImportTraces(ctx, ts)
}

// ChatRecords is the store's chats for a copy.
type ChatRecords struct{ b Backend }

// ChatRecords returns the store's chats for a copy.
func (s *Store) ChatRecords() ChatRecords { return ChatRecords{s.b} }

func (r ChatRecords) Count(ctx context.Context) (int64, error) { return r.b.CountChats(ctx) }
func (r ChatRecords) Export(ctx context.Context, batch int, fn func([]*Chat) error) error {
	return r.b.ExportChats(ctx, batch, fn)
}
func (r ChatRecords) Import(ctx context.Context, cs []*Chat) error { return r.b.ImportChats(ctx, cs) }

// copyIdempotency is what an IdempotencyBackend offers the copy.
type copyIdempotency interface {
	Count(ctx context.Context) (int64, error)
	// Export hands every record to fn in batches, by id.
	Export(ctx context.Context, batch int, fn func([]*IdempotencyRecord) error) error
	// Import stores recs, replacing a stored record with the same id.
	Import(ctx context.Context, recs []*IdempotencyRecord) error
}

// IdempotencyRecords is the stored idempotency records for a copy.
type IdempotencyRecords struct{ b IdempotencyBackend }

// Records returns the stored records for a copy.
func (s *Idempotency) Records() IdempotencyRecords { return IdempotencyRecords{s.b} }

func (r IdempotencyRecords) Count(ctx context.Context) (int64, error) { return r.b.Count(ctx) }
func (r IdempotencyRecords) Export(ctx context.Context, batch int, fn func([]*IdempotencyRecord) error) error {
	return r.b.Export(ctx, batch, fn)
}
func (r IdempotencyRecords) Import(ctx context.Context, recs []*IdempotencyRecord) error {
	return r.b.Import(ctx, recs)
}
