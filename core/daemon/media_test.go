package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

func multipartBody(t *testing.T, field, filename, contentType string, data []byte) (string, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.WriteField("note", "ignored")
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename)}
	h["Content-Type"] = []string{contentType}
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Write(data)
	_ = w.Close()
	return w.FormDataContentType(), b.String()
}

// TestMediaRoundTrip uploads media both ways, downloads it whole and in
// ranges across GridFS chunk boundaries, on either engine; on MongoDB the
// driver's own GridFS implementation reads it back.
func TestMediaRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { mediaRoundTrip(t, e) })
}

func mediaRoundTrip(t *testing.T, e storetest.Engine) {
	cfg := engineConfig(t, e)
	cfg.Media.MaxBytes = 1 << 20
	d, c := accountsDaemon(t, cfg, time.Millisecond, nil)
	// 600 KB: three GridFS chunks of 255 KiB.
	data := make([]byte, 600_000)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	ct, body := multipartBody(t, "file", "report.pdf", "application/pdf", data)
	up := c.must(c.do("POST", "/v1/media", ct, body), 201).json(t)
	if up["mediaId"] != want || up["sha256"] != want || up["size"] != float64(len(data)) || up["mimetype"] != "application/pdf" || up["filename"] != "report.pdf" {
		t.Fatalf("upload answer %v", up)
	}
	// The same bytes again, raw this time: the same media, stored once.
	again := c.must(c.do("POST", "/v1/media", "application/pdf", string(data)), 201).json(t)
	if again["mediaId"] != want {
		t.Fatalf("re-upload got %v", again)
	}
	if n, err := d.Media().Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("%d files stored for one file uploaded twice (%v), want 1", n, err)
	}
	if e == storetest.SQLite {
		// One file on disk, named by its SHA-256, beside nothing else.
		files, err := filepath.Glob(filepath.Join(cfg.DataDir, daemon.MediaDir, "*", "*"))
		if err != nil || len(files) != 1 || files[0] != filepath.Join(cfg.DataDir, daemon.MediaDir, want[:2], want) {
			t.Fatalf("media files %v, %v", files, err)
		}
	}

	full := c.must(c.get("/v1/media/"+want), 200)
	if !bytes.Equal(full.body, data) || full.header.Get("Content-Type") != "application/pdf" ||
		full.header.Get("Content-Length") != fmt.Sprint(len(data)) || full.header.Get("ETag") != `"`+want+`"` ||
		full.header.Get("Accept-Ranges") != "bytes" || full.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("download: %d bytes, headers %v", len(full.body), full.header)
	}

	const chunk = 255 * 1024
	tests := []struct {
		name, rng  string
		start, end int // inclusive
	}{
		{"first bytes", "bytes=0-9", 0, 9},
		{"across the first chunk boundary", fmt.Sprintf("bytes=%d-%d", chunk-5, chunk+4), chunk - 5, chunk + 4},
		{"spanning a whole chunk", fmt.Sprintf("bytes=%d-%d", chunk-1, 2*chunk), chunk - 1, 2 * chunk},
		{"open-ended", "bytes=599990-", 599990, len(data) - 1},
		{"suffix", "bytes=-7", len(data) - 7, len(data) - 1},
		{"end past the size is clamped", "bytes=599998-700000", 599998, len(data) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("GET", "/v1/media/"+want, "", "", "Range", tt.rng)
			if r.status != http.StatusPartialContent {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !bytes.Equal(r.body, data[tt.start:tt.end+1]) {
				t.Fatalf("got %d bytes, not bytes %d-%d", len(r.body), tt.start, tt.end)
			}
			if cr := r.header.Get("Content-Range"); cr != fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end, len(data)) {
				t.Fatalf("Content-Range %q", cr)
			}
		})
	}
	t.Run("two ranges", func(t *testing.T) {
		r := c.do("GET", "/v1/media/"+want, "", "", "Range", "bytes=0-1,599998-599999")
		if r.status != 206 || !strings.HasPrefix(r.header.Get("Content-Type"), "multipart/byteranges") {
			t.Fatalf("multi-range: %d %v", r.status, r.header)
		}
	})
	t.Run("unsatisfiable range", func(t *testing.T) {
		r := c.do("GET", "/v1/media/"+want, "", "", "Range", "bytes=700000-")
		if r.status != http.StatusRequestedRangeNotSatisfiable || r.header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(data)) {
			t.Fatalf("got %d %v", r.status, r.header)
		}
	})
	t.Run("conditional on the ETag", func(t *testing.T) {
		if r := c.do("GET", "/v1/media/"+want, "", "", "If-None-Match", `"`+want+`"`); r.status != http.StatusNotModified {
			t.Fatalf("got %d", r.status)
		}
	})

	if e != storetest.MongoDB {
		return
	}
	// Any GridFS client reads the bucket.
	bucket := d.Store().DB().GridFSBucket(options.GridFSBucket().SetName(store.MediaBucket))
	var viaDriver bytes.Buffer
	if _, err := bucket.DownloadToStream(context.Background(), want, &viaDriver); err != nil || !bytes.Equal(viaDriver.Bytes(), data) {
		t.Fatalf("driver GridFS read: %d bytes, %v", viaDriver.Len(), err)
	}
}

// TestMediaRefusesBadInput: every bad upload or download is a 4xx problem
// naming the field.
func TestMediaRefusesBadInput(t *testing.T) {
	_, c := messagesDaemon(t, func(cfg *config.Config) { cfg.Media.MaxBytes = 32 << 10 })
	tooBig := string(bytes.Repeat([]byte("x"), 33<<10))
	mpBig, mpBigBody := multipartBody(t, "file", "big.pdf", "application/pdf", []byte(tooBig))
	mpHTML, mpHTMLBody := multipartBody(t, "file", "x.html", "text/html", []byte("<script>alert(1)</script>"))
	mpOther, mpOtherBody := multipartBody(t, "attachment", "a.pdf", "application/pdf", []byte("%PDF"))
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		field                        string
	}{
		{"too large raw", "POST", "/v1/media", "application/pdf", tooBig, 413, "body"},
		{"too large multipart", "POST", "/v1/media", mpBig, mpBigBody, 413, "file"},
		{"HTML raw", "POST", "/v1/media", "text/html", "<p>hi</p>", 415, "Content-Type"},
		{"SVG raw", "POST", "/v1/media", "image/svg+xml", "<svg/>", 415, "Content-Type"},
		{"HTML in a form", "POST", "/v1/media", mpHTML, mpHTMLBody, 415, "file"},
		{"no content type", "POST", "/v1/media", "", "bytes", 415, "Content-Type"},
		{"form without a file field", "POST", "/v1/media", mpOther, mpOtherBody, 400, "file"},
		{"malformed form", "POST", "/v1/media", "multipart/form-data", "x", 400, "body"},
		{"unknown media", "GET", "/v1/media/" + strings.Repeat("ab", 32), "", "", 404, ""},
		{"malformed media id", "GET", "/v1/media/..%2f..%2fetc", "", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblem(t, c.do(tt.method, tt.path, tt.ct, tt.body), tt.status, tt.field)
		})
	}
}

// TestMediaSweptAtStart: on the embedded engine, what a crash left of an
// upload under data_dir/media (a temporary file, a file without its row)
// is removed once the daemon starts, and never served.
func TestMediaSweptAtStart(t *testing.T) {
	cfg := testConfig(t, "")
	dir := filepath.Join(cfg.DataDir, daemon.MediaDir)
	orphan := sha256.Sum256([]byte("placed, never recorded"))
	id := hex.EncodeToString(orphan[:])
	leftovers := []string{filepath.Join(dir, ".put-123"), filepath.Join(dir, id[:2], id)}
	old := time.Now().Add(-time.Hour)
	for _, f := range leftovers {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("placed, never recorded"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, old, old); err != nil {
			t.Fatal(err)
		}
	}
	_, base := start(t, cfg)
	if code, err := status(base + "/v1/media/" + id); err != nil || code != http.StatusNotFound {
		t.Fatalf("GET the orphan: %d, %v", code, err)
	}
	poll.Until(t, 10*time.Second, func() error {
		for _, f := range leftovers {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("%s still there", f)
			}
		}
		return nil
	})
}
