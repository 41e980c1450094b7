package s3media_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/s3media"
	"github.com/wildcathub/wildcat/core/s3media/s3mediatest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestParseConfigNamesTheKey(t *testing.T) {
	ok := map[string]any{"bucket": "media"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{"bucket": "media"}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		raw  any
		key  string
	}{
		{"no block", nil, "s3.bucket"},
		{"not a map", "media", "s3"},
		{"no bucket", map[string]any{"region": "eu-west-1"}, "s3.bucket"},
		{"bad bucket", with("bucket", "Media_Bucket"), "s3.bucket"},
		{"bucket not a string", with("bucket", 5), "s3.bucket"},
		{"unknown key", with("bucket_name", "x"), "s3.bucket_name"},
		{"endpoint scheme", with("endpoint", "ftp://minio:9000"), "s3.endpoint"},
		{"endpoint with path", with("endpoint", "http://minio:9000/media"), "s3.endpoint"},
		{"path_style not a bool", with("path_style", "yes"), "s3.path_style"},
		{"sse unknown", with("sse", "aes"), "s3.sse"},
		{"kms key without kms", with("sse_kms_key_id", "k1"), "s3.sse_kms_key_id"},
		{"presign too long", with("presign_ttl", "200h"), "s3.presign_ttl"},
		{"presign not a duration", with("presign_ttl", "soon"), "s3.presign_ttl"},
		{"key id without secret", with("access_key_id", "AK"), "s3.secret_access_key"},
		{"secret without key id", with("secret_access_key", "SK"), "s3.access_key_id"},
		{"token alone", with("session_token", "T"), "s3.session_token"},
		{"prefix with ..", with("prefix", "a/../b"), "s3.prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s3media.ParseConfig(tt.raw)
			var ce *s3media.ConfigError
			if !errors.As(err, &ce) || ce.Key != tt.key {
				t.Fatalf("error %v, want one naming %s", err, tt.key)
			}
		})
	}
	c, err := s3media.ParseConfig(map[string]any{"bucket": "media", "prefix": "/wildcat/media", "presign_ttl": "15m",
		"sse": "aws:kms", "sse_kms_key_id": "alias/wildcat", "path_style": true, "endpoint": "http://127.0.0.1:9000", "region": "eu-west-1"})
	if err != nil || c.Prefix != "wildcat/media/" || c.PresignTTL != 15*time.Minute || c.SSE != s3media.SSEKMS || !*c.PathStyle {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := s3media.ParseConfig(ok); err != nil {
		t.Fatal(err)
	}
	// The daemon finds the block through the plugin's targets.
	if c, err := s3media.FromArchiveConfig(map[string]any{"targets": []any{"gridfs"}, "s3": ok}); c != nil || err != nil {
		t.Fatalf("without the s3 target: %v %v", c, err)
	}
	if c, err := s3media.FromArchiveConfig(map[string]any{"targets": []any{"gridfs", "s3"}, "s3": ok}); c == nil || err != nil {
		t.Fatalf("with the s3 target: %v %v", c, err)
	}
}

func open(t *testing.T, srv *s3mediatest.Server, extra map[string]any) *s3media.Bucket {
	t.Helper()
	raw := map[string]any{"bucket": "media", "prefix": "wc", "endpoint": srv.URL, "path_style": true, "region": "us-east-1",
		"access_key_id": "AKCONFIG", "secret_access_key": "secret"}
	for k, v := range extra {
		raw[k] = v
	}
	c, err := s3media.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3media.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBucket: put, stat, ranged reads (one GET per seek, with a Range
// header), a pre-signed GET, touch without moving bytes, delete, and
// not-found for absent and malformed ids; over path-style requests.
func TestBucket(t *testing.T) {
	ctx := context.Background()
	srv := s3mediatest.New(t, "media")
	b := open(t, srv, map[string]any{"presign_ttl": "10m"})
	data := bytes.Repeat([]byte("0123456789"), 1000)
	s := sum(data)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := b.Stat(ctx, s); !errors.Is(err, s3media.ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
	if _, err := b.Stat(ctx, "../etc/passwd"); !errors.Is(err, s3media.ErrNotFound) {
		t.Fatalf("malformed: %v", err)
	}
	if err := b.Put(ctx, s, bytes.NewReader(data), int64(len(data)), "image/jpeg", "Föto 1.jpg", at); err != nil {
		t.Fatal(err)
	}
	if keys := srv.Keys(t, "media", ""); len(keys) != 1 || keys[0] != "wc/"+s {
		t.Fatalf("keys %v", keys)
	}
	for _, r := range srv.Requests() {
		if !strings.HasPrefix(r.Path, "/media/") {
			t.Fatalf("not a path-style request: %s %s", r.Method, r.Path)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "Credential=AKCONFIG/") {
			t.Fatalf("not signed with the configured key: %q", r.Header.Get("Authorization"))
		}
	}
	o, err := b.Stat(ctx, s)
	if err != nil || o.Size != int64(len(data)) || o.ContentType != "image/jpeg" || o.Filename != "Föto 1.jpg" || !o.Referenced.Equal(at) {
		t.Fatalf("%+v %v", o, err)
	}

	_, rd, err := b.Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Seek(9995, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(rd)
	if err != nil || string(tail) != "56789" {
		t.Fatalf("tail %q %v", tail, err)
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("read %d bytes, %v", len(all), err)
	}
	if n := srv.Count(func(r s3mediatest.Request) bool {
		return r.Method == http.MethodGet && r.Header.Get("Range") == "bytes=9995-"
	}); n != 1 {
		t.Fatalf("%d ranged GETs from 9995", n)
	}

	u, err := b.PresignGet(ctx, s)
	if err != nil || !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "X-Amz-Expires=600") {
		t.Fatalf("presigned %q %v", u, err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("presigned GET: %d, %d bytes", resp.StatusCode, len(got))
	}
	if _, err := b.PresignGet(ctx, sum([]byte("absent"))); !errors.Is(err, s3media.ErrNotFound) {
		t.Fatalf("presign of an absent object: %v", err)
	}

	uploads := srv.Uploads("")
	later := at.Add(48 * time.Hour)
	if err := b.Touch(ctx, o, later); err != nil {
		t.Fatal(err)
	}
	if srv.Uploads("") != uploads {
		t.Fatal("a touch uploaded the bytes again")
	}
	if o2, err := b.Stat(ctx, s); err != nil || !o2.Referenced.Equal(later) || o2.ContentType != "image/jpeg" || o2.Filename != "Föto 1.jpg" || o2.Size != o.Size {
		t.Fatalf("after touch %+v %v", o2, err)
	}

	if err := b.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, s); err != nil {
		t.Fatalf("deleting an absent object: %v", err)
	}
	if _, _, err := b.Open(ctx, s); !errors.Is(err, s3media.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
}

// TestServerSideEncryptionIsRequested: uploads and touches carry the SSE
// headers configured (the fake server stores but ignores them, so the
// requests it received are checked).
func TestServerSideEncryptionIsRequested(t *testing.T) {
	tests := []struct {
		cfg    map[string]any
		sse    string
		kmsKey string
	}{
		{map[string]any{"sse": "AES256"}, "AES256", ""},
		{map[string]any{"sse": "aws:kms", "sse_kms_key_id": "alias/wildcat"}, "aws:kms", "alias/wildcat"},
		{map[string]any{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.sse, func(t *testing.T) {
			ctx := context.Background()
			srv := s3mediatest.New(t, "media")
			b := open(t, srv, tt.cfg)
			data := []byte("secret media " + tt.sse)
			if err := b.Put(ctx, sum(data), bytes.NewReader(data), int64(len(data)), "image/png", "", time.Now()); err != nil {
				t.Fatal(err)
			}
			o, err := b.Stat(ctx, sum(data))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Touch(ctx, o, time.Now()); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range srv.Requests() {
				if r.Method != http.MethodPut {
					continue
				}
				n++
				if got := r.Header.Get("X-Amz-Server-Side-Encryption"); got != tt.sse {
					t.Errorf("%s (copy %v): sse %q, want %q", r.Path, r.Copy(), got, tt.sse)
				}
				if got := r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tt.kmsKey {
					t.Errorf("%s: kms key %q, want %q", r.Path, got, tt.kmsKey)
				}
			}
			if n != 2 {
				t.Fatalf("%d PUTs, want an upload and a copy", n)
			}
		})
	}
}

// TestCredentialsFromTheEnvironment: with no keys in the config the
// requests are signed with AWS_ACCESS_KEY_ID and carry AWS_SESSION_TOKEN.
func TestCredentialsFromTheEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
	t.Setenv("AWS_SESSION_TOKEN", "envtoken")
	srv := s3mediatest.New(t, "media")
	c, err := s3media.ParseConfig(map[string]any{"bucket": "media", "endpoint": srv.URL, "region": "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s3media.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), sum([]byte("x"))); !errors.Is(err, s3media.ErrNotFound) {
		t.Fatal(err)
	}
	r := srv.Requests()
	if len(r) == 0 || !strings.Contains(r[0].Header.Get("Authorization"), "Credential=AKFROMENV/") || r[0].Header.Get("X-Amz-Security-Token") != "envtoken" {
		t.Fatalf("requests %+v", r)
	}
}

// TestSweep deletes objects whose retention clock is before the cutoff,
// keeps newer ones and anything under the prefix not named by a SHA-256.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	srv := s3mediatest.New(t, "media")
	b := open(t, srv, nil)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	old, fresh := []byte("old"), []byte("fresh")
	for _, p := range []struct {
		data []byte
		at   time.Time
	}{{old, t0}, {fresh, t0.Add(10 * 24 * time.Hour)}} {
		if err := b.Put(ctx, sum(p.data), bytes.NewReader(p.data), int64(len(p.data)), "image/png", "", p.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Backend.CreateBucket("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Backend.PutObject("media", "wc/README", nil, strings.NewReader("not media"), 9, nil); err != nil {
		t.Fatal(err)
	}
	n, err := b.Sweep(ctx, t0.Add(5*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	keys := srv.Keys(t, "media", "")
	if strings.Join(keys, ",") != "wc/README,wc/"+sum(fresh) {
		t.Fatalf("keys after the sweep %v", keys)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPathStyle: path_style picks /{bucket}/{key} or {bucket}.host/{key};
// absent, path style for a non-AWS endpoint and virtual-hosted for AWS.
func TestPathStyle(t *testing.T) {
	tests := []struct {
		name      string
		endpoint  string
		pathStyle any
		host      string
		path      string
	}{
		{"forced path style", "https://s3.example.test", true, "s3.example.test", "/media/wc/"},
		{"forced virtual-hosted", "https://s3.example.test", false, "media.s3.example.test", "/wc/"},
		{"absent, other server", "http://minio.example.test:9000", nil, "minio.example.test:9000", "/media/wc/"},
		{"absent, AWS (dual-stack)", "", nil, "media.s3.dualstack.eu-west-1.amazonaws.com", "/wc/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := map[string]any{"bucket": "media", "prefix": "wc", "region": "eu-west-1", "access_key_id": "AK", "secret_access_key": "SK"}
			if tt.endpoint != "" {
				raw["endpoint"] = tt.endpoint
			}
			if tt.pathStyle != nil {
				raw["path_style"] = tt.pathStyle
			}
			c, err := s3media.ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			var host, path string
			b, err := s3media.Open(c, s3media.WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				host, path = r.URL.Host, r.URL.Path
				return &http.Response{StatusCode: 404, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			})))
			if err != nil {
				t.Fatal(err)
			}
			s := sum([]byte("x"))
			if _, err := b.Stat(context.Background(), s); !errors.Is(err, s3media.ErrNotFound) {
				t.Fatalf("stat: %v", err)
			}
			if host != tt.host || path != tt.path+s {
				t.Fatalf("HEAD went to %s%s, want %s%s", host, path, tt.host, tt.path+s)
			}
		})
	}
}
