package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
	"github.com/wildcathub/wildcat/sdk"
)

// blobData mirrors the test plugin's.
var blobData = bytes.Repeat([]byte("wildcat-"), 300_000/8)

func TestHostServicesFromAPlugin(t *testing.T) {
	db := storetest.NewDatabase(t)
	h := start(t, Config{}, func(o *Options) { o.Services.DB = db })
	ctx := context.Background()

	t.Run("send", func(t *testing.T) {
		ev := msg("host:send")
		got := annotations(t)(h.p.Handle(ctx, ev))
		sent := h.sender.sent()
		if len(sent) != 1 || got["messageId"] != "SENT1" {
			t.Fatalf("sent %+v, annotations %v", sent, got)
		}
		want := &session.SendRequest{To: ev.ChatID, Source: event.SourcePlugin, Text: "from plugin", ReplyTo: &session.QuoteRef{MessageID: "MEDIA1"}}
		if sent[0].account != "acme" || !reflect.DeepEqual(sent[0].req, want) {
			t.Fatalf("got %s %+v, want %+v", sent[0].account, sent[0].req, want)
		}
	})
	t.Run("fetch media", func(t *testing.T) {
		media := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 50_000)
		sum := sha256.Sum256(media)
		got := annotations(t)(h.p.Handle(ctx, msg("host:media")))
		if got["sha256"] != hex.EncodeToString(sum[:]) || got["size"] != fmt.Sprint(len(media)) || got["missing"] != "true" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("blob round trip through GridFS", func(t *testing.T) {
		got := annotations(t)(h.p.Handle(ctx, msg("host:blob")))
		if got["equal"] != "true" || got["info"] != fmt.Sprintf("w.bin application/x-test %d", len(blobData)) || got["missing"] != "true" {
			t.Fatalf("got %v", got)
		}
		// A blob is a media file: its id is the SHA-256 of its bytes, and
		// the media store (GET /v1/media/{id}) serves it as stored.
		sum := sha256.Sum256(blobData)
		if got["id"] != hex.EncodeToString(sum[:]) {
			t.Fatalf("blob id %s, want the SHA-256 of its bytes", got["id"])
		}
		data, in, err := media.NewGridFS(db, 1<<30).ReadAll(ctx, got["id"])
		if err != nil || !bytes.Equal(data, blobData) || in.Mimetype != "application/x-test" || in.Filename != "w.bin" {
			t.Fatalf("media store: %+v (%d bytes), %v", in, len(data), err)
		}
	})
	t.Run("reply with blob-backed media", func(t *testing.T) {
		acts, err := h.p.Handle(ctx, msg("blobmedia"))
		if err != nil || len(acts) != 1 {
			t.Fatalf("%+v %v", acts, err)
		}
		m := acts[0].Send.Media
		if m == nil || m.Kind != session.MediaImage || !bytes.Equal(m.Data, blobData) || m.Caption != "c" || acts[0].Send.To != "15550001111@s.whatsapp.net" {
			t.Fatalf("media: %+v", acts[0].Send)
		}
	})
	t.Run("reply with a poll", func(t *testing.T) {
		acts, err := h.p.Handle(ctx, msg("poll"))
		if err != nil || len(acts) != 1 {
			t.Fatalf("%+v %v", acts, err)
		}
		want := &session.PollSend{Name: "Lunch?", Options: []string{"Pizza", "Sushi"}, SelectableCount: 1}
		if p := acts[0].Send.Poll; !reflect.DeepEqual(p, want) || acts[0].Send.Text != "" {
			t.Fatalf("poll: %+v", acts[0].Send)
		}
	})
	t.Run("kv persisted per plugin", func(t *testing.T) {
		got := annotations(t)(h.p.Handle(ctx, msg("host:kv")))
		if got["get"] != "gone soon true" || got["afterDelete"] != "false" {
			t.Fatalf("got %v", got)
		}
		var doc bson.M
		if err := db.Collection(store.KV).FindOne(ctx, bson.D{{Key: "_id", Value: "plugin:tp:keep"}}).Decode(&doc); err != nil {
			t.Fatalf("kv document: %v", err)
		}
		if v, _ := doc["value"].(bson.Binary); string(v.Data) != "kept" || doc["ns"] != "plugin:tp" {
			t.Fatalf("kv document: %v", doc)
		}
		if n, _ := db.Collection(store.KV).CountDocuments(ctx, bson.D{{Key: "_id", Value: "plugin:tp:temp"}}); n != 0 {
			t.Fatal("deleted key still stored")
		}
		if _, found, _ := NewMongoKV(db, nil).Get(ctx, "tp", "short"); found {
			t.Fatal("expired key still readable")
		}
	})
	t.Run("get message", func(t *testing.T) {
		got := annotations(t)(h.p.Handle(ctx, msg("host:message")))
		if got["text"] != "stored text" || got["from"] != "15550003333@s.whatsapp.net" || got["missing"] != "true" {
			t.Fatalf("got %v", got)
		}
	})
}

func TestServicesNotConfiguredAreUnavailable(t *testing.T) {
	hs := &hostServices{plugin: "x"}
	ctx := context.Background()
	if _, err := hs.SendMessage(ctx, "a", &sdk.SendRequest{To: "b", Text: "c"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("send: %v", err)
	}
	if _, _, err := hs.KVGet(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("kv: %v", err)
	}
	if _, err := hs.PutBlob(ctx, sdk.BlobInfo{}, bytes.NewReader(nil)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("blob: %v", err)
	}
}

func newKV(t *testing.T, e storetest.Engine, now func() time.Time) KV {
	if e == storetest.SQLite {
		return NewSQLiteKV(storetest.NewSQLite(t, SQLiteSchema), now)
	}
	return NewMongoKV(storetest.NewDatabase(t), now)
}

func TestKVStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		kv := newKV(t, e, func() time.Time { return now })
		ctx := context.Background()
		if err := kv.Set(ctx, "a", "k", []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := kv.Set(ctx, "b", "k", []byte("2"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := kv.Get(ctx, "a", "k"); err != nil || !ok || string(v) != "1" {
			t.Fatalf("a: %q %v %v", v, ok, err)
		}
		if v, ok, _ := kv.Get(ctx, "b", "k"); !ok || string(v) != "2" {
			t.Fatalf("namespaces leak: %q %v", v, ok)
		}
		now = now.Add(time.Minute)
		if _, ok, _ := kv.Get(ctx, "b", "k"); ok {
			t.Fatal("expired key readable")
		}
		if err := kv.Set(ctx, "a", "k", []byte{}, 0); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := kv.Get(ctx, "a", "k"); !ok || v == nil || len(v) != 0 {
			t.Fatalf("empty value: %q %v", v, ok)
		}
		if err := kv.Set(ctx, "a", "nil", nil, 0); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := kv.Get(ctx, "a", "nil"); !ok || len(v) != 0 {
			t.Fatalf("nil value: %q %v", v, ok)
		}
		if err := kv.Delete(ctx, "a", "nil"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := kv.Get(ctx, "a", "nil"); ok {
			t.Fatal("deleted key readable")
		}
		if err := kv.Delete(ctx, "a", "missing"); err != nil {
			t.Fatal(err)
		}
		if err := kv.Set(ctx, "a", "", nil, 0); err == nil {
			t.Fatal("empty key accepted")
		}
		if err := kv.Set(ctx, "a", string(make([]byte, MaxKVKey+1)), nil, 0); err == nil {
			t.Fatal("long key accepted")
		}
	})
}

// TestKVSweep: the sweep deletes every plugin's expired keys (issue 16:
// the old sweep matched only the rules' keys) and nothing else.
func TestKVSweep(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		kv := newKV(t, e, func() time.Time { return now })
		ctx := context.Background()
		for _, s := range []struct {
			plugin, key string
			ttl         time.Duration
		}{{"a", "short", time.Minute}, {"b", "short", 30 * time.Second}, {"a", "long", time.Hour}, {"b", "forever", 0}} {
			if err := kv.Set(ctx, s.plugin, s.key, []byte("v"), s.ttl); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(time.Minute)
		if n, err := kv.Sweep(ctx); err != nil || n != 2 {
			t.Fatalf("sweep: %d %v, want 2", n, err)
		}
		for _, k := range [][2]string{{"a", "long"}, {"b", "forever"}} {
			if _, ok, _ := kv.Get(ctx, k[0], k[1]); !ok {
				t.Errorf("%s/%s swept", k[0], k[1])
			}
		}
		if n, err := kv.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep: %d %v", n, err)
		}
	})
}

// The MongoDB sweep leaves the rules' keys in the shared kv collection to
// the rules' own sweep.
func TestMongoKVSweepLeavesRuleKeys(t *testing.T) {
	db := storetest.NewDatabase(t)
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)
	if _, err := db.Collection(store.KV).InsertOne(ctx, bson.D{{Key: "_id", Value: "rule:r:k"}, {Key: "expiresAt", Value: past}}); err != nil {
		t.Fatal(err)
	}
	if n, err := NewMongoKV(db, nil).Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep: %d %v", n, err)
	}
}

// SQLite sweeps a backlog larger than one transaction in one call.
func TestSQLiteKVSweepsInBatches(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	kv := NewSQLiteKV(storetest.NewSQLite(t, SQLiteSchema), func() time.Time { return now })
	ctx := context.Background()
	const n = sweepBatch + 3
	for i := range n {
		if err := kv.Set(ctx, fmt.Sprint("p", i%3), fmt.Sprint(i), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Second)
	if got, err := kv.Sweep(ctx); err != nil || got != n {
		t.Fatalf("sweep: %d %v, want %d", got, err, n)
	}
}

// TestBlobs: blobs live in the media store of either engine (GridFS by
// default when only DB is given).
func TestBlobs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) {
		var b *Blobs
		switch e {
		case storetest.SQLite:
			s, err := media.NewFileStore(storetest.NewSQLite(t, media.SQLiteSchema), t.TempDir(), DefaultBlobMaxBytes)
			if err != nil {
				t.Fatal(err)
			}
			b = Services{Blobs: s}.blobStore()
		case storetest.MongoDB:
			b = Services{DB: storetest.NewDatabase(t)}.blobStore()
		}
		ctx := context.Background()
		info, err := b.Put(ctx, "p", sdk.BlobInfo{Filename: "f.txt", ContentType: "text/plain"}, bytes.NewReader(blobData))
		if err != nil {
			t.Fatal(err)
		}
		rc, got, err := b.Get(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(data, blobData) || got != info || got.Size != int64(len(blobData)) {
			t.Fatalf("got %+v (%d bytes, %v), put %+v", got, len(data), err, info)
		}
		for _, id := range []string{"000000000000000000000000", "not-hex", strings.Repeat("0", 64)} {
			if _, _, err := b.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v", id, err)
			}
		}
	})
}

type mediaErrFetcher struct{ err error }

func (f mediaErrFetcher) FetchMedia(context.Context, string, string) (io.ReadCloser, error) {
	return nil, f.err
}

type linkRecorder struct{ links []sdk.MediaLink }

func (l *linkRecorder) LinkMedia(_ context.Context, link sdk.MediaLink) error {
	if link.MessageID == "missing" {
		return fmt.Errorf("message missing: %w", mongo.ErrNoDocuments)
	}
	l.links = append(l.links, link)
	return nil
}

// The media-gone path: the driver asked the phone to re-upload, so the
// plugin sees a temporary failure (ErrUnavailable), not "not found".
func TestServicesMediaRetryRequestedIsUnavailable(t *testing.T) {
	ctx := context.Background()
	hs := &hostServices{plugin: "x", svc: Services{Media: mediaErrFetcher{fmt.Errorf("download: %w", session.ErrMediaRetryRequested)}}}
	if _, err := hs.FetchMedia(ctx, "a", "m"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Fatalf("retry requested: %v", err)
	}
	hs.svc.Media = mediaErrFetcher{session.ErrNoMedia}
	if _, err := hs.FetchMedia(ctx, "a", "m"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no media: %v", err)
	}
}

func TestServicesLinkMedia(t *testing.T) {
	ctx := context.Background()
	hs := &hostServices{plugin: "x"}
	if err := hs.LinkMedia(ctx, sdk.MediaLink{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no linker: %v", err)
	}
	rec := &linkRecorder{}
	hs.svc.Linker = rec
	want := sdk.MediaLink{AccountID: "a", MessageID: "m", MediaID: "id", SHA256: "id", Size: 3, Targets: []string{"gridfs"}}
	if err := hs.LinkMedia(ctx, want); err != nil || len(rec.links) != 1 || !reflect.DeepEqual(rec.links[0], want) {
		t.Fatalf("link: %v %+v", err, rec.links)
	}
	if err := hs.LinkMedia(ctx, sdk.MediaLink{AccountID: "a", MessageID: "missing"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing message: %v", err)
	}
}
