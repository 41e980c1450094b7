package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/s3media/s3mediatest"
	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

func s3Config(srv *s3mediatest.Server, extra map[string]any) map[string]any {
	s3 := map[string]any{"bucket": "media", "prefix": "wildcat/media", "endpoint": srv.URL, "path_style": true,
		"region": "us-east-1", "access_key_id": "AK", "secret_access_key": "SK", "sse": "AES256"}
	cfg := map[string]any{"targets": []any{"s3"}, "s3": s3}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// fakeClock is the archive's clock in tests: retention is decided by it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestArchiveToS3 archives media messages into the s3 target: one object
// per distinct bytes at {prefix}{sha256} (two messages with the same bytes
// upload once), encrypted as configured, linked with the SHA-256 as the
// media id; a restarted plugin finds the objects with a HEAD and uploads
// nothing again.
func TestArchiveToS3(t *testing.T) {
	srv := s3mediatest.New(t, "media")
	h := plugintest.NewHost()
	p := plugintest.Start(t, New(), plugintest.WithHost(h), plugintest.WithConfig(s3Config(srv, nil)))
	photo, doc := bytes.Repeat([]byte("jpeg!"), 100_000), []byte("%PDF-1.4 a document")
	for _, j := range []*sdk.Job{
		mediaMessage(h, "acme", "S1", photo, "image/jpeg"),
		mediaMessage(h, "acme", "S2", photo, "image/jpeg"),
		mediaMessage(h, "other", "S3", photo, "image/jpeg"),
		mediaMessage(h, "acme", "S4", doc, "application/pdf"),
	} {
		if res := deliver(t, p, j); res.Outcome != sdk.OutcomeOK {
			t.Fatalf("%s: %+v", j.ID, res)
		}
	}
	keys := srv.Keys(t, "media", "")
	want := sortedCopy([]string{"wildcat/media/" + sum(photo), "wildcat/media/" + sum(doc)})
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("objects %v, want %v", keys, want)
	}
	if !bytes.Equal(srv.Object(t, "media", "wildcat/media/"+sum(photo)), photo) {
		t.Fatal("the object does not hold the bytes")
	}
	if n := srv.Uploads("/media/wildcat/media/" + sum(photo)); n != 1 {
		t.Fatalf("the photo was uploaded %d times, want once", n)
	}
	for _, r := range srv.Requests() {
		if r.Upload() && r.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
			t.Fatalf("upload %s without sse: AES256", r.Path)
		}
	}
	for _, l := range h.Links() {
		if l.MediaID != l.SHA256 || len(l.Targets) != 1 || l.Targets[0] != "s3" || l.SkippedReason != "" {
			t.Fatalf("link %+v", l)
		}
	}
	if len(h.BlobIDs()) != 0 {
		t.Fatal("gridfs used although only s3 is a target")
	}

	// A new plugin process over the same bucket: the same bytes again are
	// found, not uploaded (nor downloaded from WhatsApp).
	uploads := srv.Uploads("")
	h2 := plugintest.NewHost()
	p2 := plugintest.Start(t, New(), plugintest.WithHost(h2), plugintest.WithConfig(s3Config(srv, nil)))
	job := mediaMessage(h2, "acme", "S5", photo, "image/jpeg")
	h2.FailMedia("acme", "S5", fmt.Errorf("must not be downloaded: %w", sdk.ErrUnavailable))
	if res := deliver(t, p2, job); res.Outcome != sdk.OutcomeOK {
		t.Fatalf("after the restart: %+v", res)
	}
	if n := srv.Uploads(""); n != uploads {
		t.Fatalf("%d uploads after the restart", n-uploads)
	}
	if l := h2.Links(); len(l) != 1 || l[0].MediaID != sum(photo) {
		t.Fatalf("links after the restart %+v", l)
	}
}

// TestS3ConcurrentSameBytesUploadOnce: jobs of one process archiving the
// same bytes at once upload them once.
func TestS3ConcurrentSameBytesUploadOnce(t *testing.T) {
	srv := s3mediatest.New(t, "media")
	h := plugintest.NewHost()
	p := plugintest.Start(t, New(), plugintest.WithHost(h), plugintest.WithConfig(s3Config(srv, nil)))
	data := bytes.Repeat([]byte("viral video "), 50_000)
	var jobs []*sdk.Job
	for i := range 8 {
		j := mediaMessage(h, "acme", fmt.Sprintf("V%d", i), data, "video/mp4")
		// No SHA-256 in the metadata: every job downloads and commits.
		m, _ := h.GetMessage(context.Background(), "acme", fmt.Sprintf("V%d", i))
		m.Media.SHA256 = ""
		jobs = append(jobs, j)
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			if res := deliver(t, p, j); res.Outcome != sdk.OutcomeOK {
				t.Errorf("%s: %+v", j.ID, res)
			}
		})
	}
	wg.Wait()
	if n := srv.Uploads(""); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
}

// TestS3Retention: objects not referenced by a message for retention_days
// (by the archive's clock) are deleted by the sweep; a newer message that
// references an object keeps it.
func TestS3Retention(t *testing.T) {
	srv := s3mediatest.New(t, "media")
	h := plugintest.NewHost()
	clock := &fakeClock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
	a := New()
	a.now = clock.Now
	p := plugintest.Start(t, a, plugintest.WithHost(h), plugintest.WithConfig(s3Config(srv, map[string]any{"retention_days": float64(30)})))
	once, twice := []byte("referenced once"), []byte("referenced again later")
	for _, j := range []*sdk.Job{mediaMessage(h, "acme", "R1", once, "image/png"), mediaMessage(h, "acme", "R2", twice, "image/png")} {
		if res := deliver(t, p, j); res.Outcome != sdk.OutcomeOK {
			t.Fatalf("%s: %+v", j.ID, res)
		}
	}
	clock.Advance(20 * 24 * time.Hour)
	if res := deliver(t, p, mediaMessage(h, "acme", "R3", twice, "image/png")); res.Outcome != sdk.OutcomeOK {
		t.Fatalf("R3: %+v", res)
	}
	key := func(b []byte) string { return "wildcat/media/" + sum(b) }
	ctx := sdk.WithHost(context.Background(), h)

	clock.Advance(11 * 24 * time.Hour) // 31 days after R1, 11 after R3
	a.sweep(ctx)
	if keys := srv.Keys(t, "media", ""); len(keys) != 1 || keys[0] != key(twice) {
		t.Fatalf("after 31 days: %v, want only %s", keys, key(twice))
	}
	clock.Advance(20 * 24 * time.Hour) // 31 days after R3
	a.sweep(ctx)
	if keys := srv.Keys(t, "media", ""); len(keys) != 0 {
		t.Fatalf("after 30 days without a reference: %v", keys)
	}
	// Gone from the bucket, the bytes are archived again when a message
	// carries them.
	if res := deliver(t, p, mediaMessage(h, "acme", "R4", once, "image/png")); res.Outcome != sdk.OutcomeOK || srv.Object(t, "media", key(once)) == nil {
		t.Fatalf("R4: %+v", res)
	}
}

// TestS3BadConfigNamesTheKey: every refused s3 setting is named in the
// error.
func TestS3BadConfigNamesTheKey(t *testing.T) {
	srv := s3mediatest.New(t, "media")
	p := plugintest.Start(t, New())
	tests := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"targets": []any{"s3"}}, "s3.bucket: is required"},
		{map[string]any{"targets": []any{"s3"}, "s3": map[string]any{"bucket": "media", "sse": "aws:kms", "sse_kms_key": "k"}}, "s3.sse_kms_key: unknown key"},
		{map[string]any{"targets": []any{"s3"}, "s3": map[string]any{"bucket": "media", "presign_ttl": "30d"}}, "s3.presign_ttl"},
		{map[string]any{"targets": []any{"s3"}, "s3": map[string]any{"bucket": "media", "endpoint": "minio:9000"}}, "s3.endpoint"},
		{map[string]any{"targets": []any{"gridfs"}, "s3": map[string]any{"bucket": "media"}}, "s3: is set but targets do not include s3"},
		{map[string]any{"targets": []any{"s4"}}, `unknown target "s4" (gridfs, dir or s3)`},
		{s3Config(srv, map[string]any{"retention_days": "30"}), "retention_days"},
	}
	for _, tt := range tests {
		err := p.Configure(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
