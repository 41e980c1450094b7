package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/sdk"
	"github.com/wildcathub/wildcat/sdk/plugintest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// mediaMessage seeds a stored image message carrying data and returns the
// job that delivers its event.
func mediaMessage(h *plugintest.Host, acct, id string, data []byte, mimetype string) *sdk.Job {
	ts := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	m := &sdk.Message{AccountID: acct, MessageID: id, ChatID: "1555@s.whatsapp.net", From: "1555@s.whatsapp.net",
		Timestamp: ts.Unix(), Type: "image", HasMedia: true,
		Media: &sdk.Media{Mimetype: mimetype, Size: uint64(len(data)), SHA256: sum(data)}}
	h.AddMessage(m)
	h.AddMedia(acct, id, data)
	mc := *m
	return &sdk.Job{ID: acct + ":" + id + ":mediaarchive", Target: "mediaarchive",
		Event: &sdk.Event{ID: acct + ":" + id, Kind: sdk.KindMessageReceived, AccountID: acct, Timestamp: ts, Source: "phone", Message: &mc}}
}

func deliver(t *testing.T, p *plugintest.Harness, job *sdk.Job) sdk.Result {
	t.Helper()
	res, err := p.Deliver(context.Background(), job)
	if err != nil {
		t.Fatalf("deliver %s: %v", job.ID, err)
	}
	return res
}

func TestArchiveToGridFSDeduplicatesAndLinks(t *testing.T) {
	h := plugintest.NewHost()
	p := plugintest.Start(t, New(), plugintest.WithHost(h))
	if got := p.Info().Capabilities; len(got) != 1 || got[0] != sdk.CapabilitySink {
		t.Fatalf("capabilities %v", got)
	}
	data := bytes.Repeat([]byte("jpeg!"), 100_000) // several stream chunks
	for i := range 3 {
		if res := deliver(t, p, mediaMessage(h, "acme", fmt.Sprintf("M%d", i), data, "image/jpeg")); res.Outcome != sdk.OutcomeOK {
			t.Fatalf("message %d: %+v", i, res)
		}
	}
	if ids := h.BlobIDs(); len(ids) != 1 || ids[0] != sum(data) {
		t.Fatalf("blobs %v, want one with the SHA-256 of the bytes", ids)
	}
	rc, info, err := h.GetBlob(context.Background(), sum(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, data) || info.ContentType != "image/jpeg" {
		t.Fatalf("blob %+v, %d bytes", info, len(got))
	}
	links := h.Links()
	if len(links) != 3 {
		t.Fatalf("links %+v", links)
	}
	for i, l := range links {
		if l.MessageID != fmt.Sprintf("M%d", i) || l.MediaID != sum(data) || l.SHA256 != sum(data) || l.Size != int64(len(data)) || l.SkippedReason != "" {
			t.Fatalf("link %d: %+v", i, l)
		}
	}
	// The retention policy is published for the daemon's retention job.
	if v, ok := h.KV(RetentionKey); !ok || string(v) != "0" {
		t.Fatalf("retention key %q %v", v, ok)
	}
}

func TestArchiveToDirectory(t *testing.T) {
	h := plugintest.NewHost()
	dir := t.TempDir()
	p := plugintest.Start(t, New(), plugintest.WithHost(h), plugintest.WithConfig(map[string]any{
		"targets": []any{"dir"}, "dir": dir, "retention_days": float64(30),
	}))
	a, b := []byte("first file"), []byte("second file, a PDF")
	for _, j := range []*sdk.Job{
		mediaMessage(h, "acme", "D1", a, "image/png"),
		mediaMessage(h, "acme", "D2", b, "application/pdf"),
		mediaMessage(h, "acme", "D3", a, "image/png"),
	} {
		if res := deliver(t, p, j); res.Outcome != sdk.OutcomeOK {
			t.Fatalf("%s: %+v", j.ID, res)
		}
	}
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	want := []string{
		filepath.Join("acme", "2026", "03", sum(a)+".png"),
		filepath.Join("acme", "2026", "03", sum(b)+".pdf"),
	}
	if strings.Join(files, ",") != strings.Join(sortedCopy(want), ",") {
		t.Fatalf("files %v, want %v (nothing left in .tmp)", files, want)
	}
	got, _ := os.ReadFile(filepath.Join(dir, want[1]))
	if !bytes.Equal(got, b) {
		t.Fatalf("dir file holds %q", got)
	}
	if len(h.BlobIDs()) != 0 {
		t.Fatal("gridfs used although only dir is a target")
	}
	for _, l := range h.Links() {
		if l.MediaID != "" || len(l.Targets) != 1 || l.Targets[0] != "dir" {
			t.Fatalf("link %+v", l)
		}
	}
	if v, _ := h.KV(RetentionKey); string(v) != "30" {
		t.Fatalf("retention key %q", v)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestLimitsSkipWithAReason(t *testing.T) {
	h := plugintest.NewHost()
	p := plugintest.Start(t, New(), plugintest.WithHost(h), plugintest.WithConfig(map[string]any{
		"max_bytes": float64(1000), "mimetypes": []any{"image/*", "application/pdf"},
	}))
	big := mediaMessage(h, "acme", "BIG", bytes.Repeat([]byte{7}, 1001), "image/jpeg")
	video := mediaMessage(h, "acme", "VID", []byte("small video"), "video/mp4")
	ok := mediaMessage(h, "acme", "PDF", []byte("%PDF-1.4 small"), "application/pdf; charset=binary")
	for _, j := range []*sdk.Job{big, video, ok} {
		if res := deliver(t, p, j); res.Outcome != sdk.OutcomeOK {
			t.Fatalf("%s: %+v", j.ID, res)
		}
	}
	links := h.Links()
	if len(links) != 3 {
		t.Fatalf("links %+v", links)
	}
	if !strings.Contains(links[0].SkippedReason, "max_bytes 1000") || !strings.Contains(links[1].SkippedReason, "video/mp4 is not in the mimetypes allow-list") || links[2].SkippedReason != "" {
		t.Fatalf("links %+v", links)
	}
	if ids := h.BlobIDs(); len(ids) != 1 || ids[0] != sum([]byte("%PDF-1.4 small")) {
		t.Fatalf("blobs %v", ids)
	}

	// A message that understates its size is caught while streaming: the
	// download stops at max_bytes+1 and the media is skipped.
	liar := mediaMessage(h, "acme", "LIAR", bytes.Repeat([]byte{9}, 5000), "image/jpeg")
	m, _ := h.GetMessage(context.Background(), "acme", "LIAR")
	m.Media.Size = 10
	if res := deliver(t, p, liar); res.Outcome != sdk.OutcomeOK {
		t.Fatalf("liar: %+v", res)
	}
	if l := h.Links()[3]; !strings.Contains(l.SkippedReason, "exceeds max_bytes") {
		t.Fatalf("liar link %+v", l)
	}
}

func TestCorruptedDownloadIsRetried(t *testing.T) {
	h := plugintest.NewHost()
	dir := t.TempDir()
	p := plugintest.Start(t, New(), plugintest.WithHost(h), plugintest.WithConfig(map[string]any{"targets": []any{"gridfs", "dir"}, "dir": dir}))
	data := []byte("the real bytes")
	job := mediaMessage(h, "acme", "C1", data, "image/jpeg")
	h.AddMedia("acme", "C1", []byte("the fake bytes")) // same size, other hash
	res := deliver(t, p, job)
	if res.Outcome != sdk.OutcomeRetry || !strings.Contains(res.Err.Error(), "SHA-256") {
		t.Fatalf("hash mismatch: %+v", res)
	}
	h.AddMedia("acme", "C1", []byte("short"))
	if res := deliver(t, p, job); res.Outcome != sdk.OutcomeRetry || !strings.Contains(res.Err.Error(), "5 bytes") {
		t.Fatalf("size mismatch: %+v", res)
	}
	if len(h.BlobIDs()) != 0 || len(h.Links()) != 0 {
		t.Fatalf("a corrupted download was stored or linked: %v %v", h.BlobIDs(), h.Links())
	}
	entries, _ := os.ReadDir(filepath.Join(dir, ".tmp"))
	if len(entries) != 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
	h.AddMedia("acme", "C1", data)
	if res := deliver(t, p, job); res.Outcome != sdk.OutcomeOK {
		t.Fatalf("good download: %+v", res)
	}
}

func TestMediaGoneIsRetriedThenArchived(t *testing.T) {
	h := plugintest.NewHost()
	p := plugintest.Start(t, New(), plugintest.WithHost(h))
	data := []byte("expired on the CDN")
	job := mediaMessage(h, "acme", "G1", data, "image/jpeg")
	// What the daemon's Host answers when the driver asked the phone to
	// re-upload: a temporary failure.
	h.FailMedia("acme", "G1", fmt.Errorf("media expired; re-upload requested: %w", sdk.ErrUnavailable))
	if res := deliver(t, p, job); res.Outcome != sdk.OutcomeRetry || !strings.Contains(res.Err.Error(), "re-upload requested") {
		t.Fatalf("gone: %+v", res)
	}
	h.FailMedia("acme", "G1", nil)
	if res := deliver(t, p, job); res.Outcome != sdk.OutcomeOK {
		t.Fatalf("after re-upload: %+v", res)
	}
	if ids := h.BlobIDs(); len(ids) != 1 {
		t.Fatalf("blobs %v", ids)
	}
	// Media that does not exist at all is a permanent failure.
	h.FailMedia("acme", "G2", fmt.Errorf("no media: %w", sdk.ErrNotFound))
	if res := deliver(t, p, mediaMessage(h, "acme", "G2", []byte("x"), "image/jpeg")); res.Outcome != sdk.OutcomeFail {
		t.Fatalf("not found: %+v", res)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	p := plugintest.Start(t, New())
	for _, cfg := range []map[string]any{
		{"targets": []any{"s3"}},
		{"targets": []any{"dir"}},
		{"max_bytes": float64(-1)},
		{"max_bytes": "big"},
		{"mimetypes": []any{"image"}},
		{"retention_days": 1.5},
		{"retension_days": float64(3)},
	} {
		if err := p.Configure(context.Background(), cfg); err == nil {
			t.Errorf("%v accepted", cfg)
		}
	}
}

func TestDirRetentionSweepsUntouchedFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := filepath.Join(dir, "acme", "2025", "01", "a.jpg")
	fresh := filepath.Join(dir, "acme", "2026", "03", "b.jpg")
	tmp := filepath.Join(dir, ".tmp", "123-x")
	for _, f := range []string{old, fresh, tmp} {
		os.MkdirAll(filepath.Dir(f), 0o750)
		os.WriteFile(f, []byte("x"), 0o640)
	}
	os.Chtimes(old, now.Add(-40*24*time.Hour), now.Add(-40*24*time.Hour))
	os.Chtimes(tmp, now.Add(-40*24*time.Hour), now.Add(-40*24*time.Hour))
	n, err := sweepDir(dir, now.Add(-30*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("old file kept")
	}
	if _, err := os.Stat(filepath.Dir(old)); !os.IsNotExist(err) {
		t.Fatal("empty month directory kept")
	}
	for _, f := range []string{fresh, tmp} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func TestDirDedupTouchesTheFile(t *testing.T) {
	h := plugintest.NewHost()
	dir := t.TempDir()
	a := New()
	p := plugintest.Start(t, a, plugintest.WithHost(h), plugintest.WithConfig(map[string]any{"targets": []any{"dir"}, "dir": dir}))
	data := []byte("sent again later")
	if res := deliver(t, p, mediaMessage(h, "acme", "T1", data, "image/jpeg")); res.Outcome != sdk.OutcomeOK {
		t.Fatal(res)
	}
	f := filepath.Join(dir, "acme", "2026", "03", sum(data)+".jpg")
	past := time.Now().Add(-100 * 24 * time.Hour)
	if err := os.Chtimes(f, past, past); err != nil {
		t.Fatal(err)
	}
	if res := deliver(t, p, mediaMessage(h, "acme", "T2", data, "image/jpeg")); res.Outcome != sdk.OutcomeOK {
		t.Fatal(res)
	}
	st, err := os.Stat(f)
	if err != nil || !st.ModTime().After(past.Add(time.Hour)) {
		t.Fatalf("a newer reference did not refresh the retention clock: %v %v", st.ModTime(), err)
	}
	if n, _ := sweepDir(dir, time.Now().Add(-30*24*time.Hour)); n != 0 {
		t.Fatal("a file referenced by a newer message was swept")
	}
}
