package messages_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// BenchmarkHistory measures, on the store the tests use (the embedded
// engine unless WILDCAT_TEST_MONGODB_URI says otherwise), the two reads the
// messages API is made of, each beside the raw driver call it competes
// with: a 50-message page of one chat out of 100,000 messages (reported as
// messages listed per second), and a single message by id (reads per
// second). Run with `make bench`.
func BenchmarkHistory(b *testing.B) {
	const total, chats, batch = 100_000, 100, 5_000
	ctx := context.Background()
	db := storetest.NewDatabase(b)
	c := db.Collection(store.Messages)
	for _, ix := range []bson.D{
		{{Key: "accountId", Value: 1}, {Key: "chatId", Value: 1}, {Key: "sortKey", Value: -1}},
		{{Key: "accountId", Value: 1}, {Key: "sortKey", Value: -1}},
	} {
		// One per command: the embedded engine cannot take several at once.
		if _, err := c.Indexes().CreateOne(ctx, mongoIndex(ix)); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	raw := []byte("\x0a\x1ethis is roughly a small text message proto")
	docs := make([]any, 0, batch)
	for i := range total {
		id := fmt.Sprintf("3EB0%018X", i)
		chat := fmt.Sprintf("1555%07d@s.whatsapp.net", i%chats)
		ts := base + int64(i)
		docs = append(docs, messages.Message{
			ID: messages.DocID("bench", id),
			Message: event.Message{AccountID: "bench", MessageID: id, ChatID: chat, From: chat, FromPN: chat, Timestamp: ts,
				Type: event.TypeText, Text: fmt.Sprintf("message %d about order %d", i, i%977), PushName: "Customer"},
			RawMessage: raw, Kind: event.KindMessageReceived, Source: event.SourcePhone,
			StoredAt: time.Unix(ts, 0).UTC(), SortKey: messages.SortKey(ts, id),
		})
		if len(docs) == batch {
			if _, err := c.InsertMany(ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	b.Logf("seeded %d messages in %s (%.0f/s)", total, time.Since(start).Round(time.Millisecond), total/time.Since(start).Seconds())

	s := messages.New(db, nil)
	chat := "15550000042@s.whatsapp.net"
	q := messages.Query{AccountID: "bench", ChatID: chat, Limit: 50}
	first, err := s.History(ctx, q)
	if err != nil || len(first.Messages) != 50 || first.NextCursor == "" {
		b.Fatalf("first page: %v %v", first, err)
	}
	perPage := func(b *testing.B) {
		b.ReportMetric(float64(b.N*50)/b.Elapsed().Seconds(), "msgs/s")
	}

	b.Run("page50/store", func(b *testing.B) {
		for b.Loop() {
			p, err := s.History(ctx, q)
			if err != nil || len(p.Messages) != 50 {
				b.Fatal(err)
			}
		}
		perPage(b)
	})
	b.Run("page50/store-with-cursor", func(b *testing.B) {
		q := q
		q.Cursor = first.NextCursor
		for b.Loop() {
			p, err := s.History(ctx, q)
			if err != nil || len(p.Messages) != 50 {
				b.Fatal(err)
			}
		}
		perPage(b)
	})
	b.Run("page50/raw-driver", func(b *testing.B) {
		// The same filter, sort and limit, decoded only to raw BSON: what
		// the engine itself costs.
		f := bson.D{{Key: "accountId", Value: "bench"}, {Key: "chatId", Value: chat}}
		o := options.Find().SetSort(bson.D{{Key: "sortKey", Value: -1}}).SetLimit(51)
		for b.Loop() {
			cur, err := c.Find(ctx, f, o)
			if err != nil {
				b.Fatal(err)
			}
			var out []bson.Raw
			if err := cur.All(ctx, &out); err != nil || len(out) != 51 {
				b.Fatal(err)
			}
		}
		perPage(b)
	})
	ids := make([]string, 0, 1000)
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("3EB0%018X", i*97))
	}
	reads := func(b *testing.B) { b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s") }
	b.Run("get/store", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Get(ctx, "bench", ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reads(b)
	})
	b.Run("get/raw-driver", func(b *testing.B) {
		i := 0
		for b.Loop() {
			var out bson.Raw
			if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: messages.DocID("bench", ids[i%len(ids)])}}).Decode(&out); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reads(b)
	})
}

func mongoIndex(keys bson.D) mongo.IndexModel { return mongo.IndexModel{Keys: keys} }
