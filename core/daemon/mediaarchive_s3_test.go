package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/s3media/s3mediatest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestMediaArchiveS3 runs the real plugin binary with the s3 target
// against an in-process S3 server: media messages are archived once per
// distinct bytes under {prefix}{sha256}, GET /v1/media/{id} streams them
// from the bucket (ranges read only what they cover), a restarted daemon
// and plugin serve them still and upload nothing again, and with
// presign_ttl the route redirects to a pre-signed URL; ids the bucket does
// not hold stay 404 problems. On either engine (the daemon's own media
// store comes first).
func TestMediaArchiveS3(t *testing.T) {
	storetest.Each(t, mediaArchiveS3)
}

func mediaArchiveS3(t *testing.T, e storetest.Engine) {
	ctx := context.Background()
	srv := s3mediatest.New(t, "media")
	s3 := map[string]any{"bucket": "media", "prefix": "wildcat/media", "endpoint": srv.URL, "path_style": true,
		"region": "us-east-1", "access_key_id": "AK", "secret_access_key": "SK", "sse": "AES256"}
	cfg := engineConfig(t, e)
	withS3 := func(s3 map[string]any) config.Config {
		c := cfg
		c.Plugins = map[string]pluginhost.Config{
			daemon.MediaArchiveTarget: {Path: pluginBin("mediaarchive"), Timeout: 30 * time.Second,
				Config: map[string]any{"targets": []any{"s3"}, "s3": s3}},
		}
		c.Pipeline = []pipeline.StageConfig{archiveStage()}
		return c
	}
	start := func(cfg config.Config, pairDelay time.Duration) (*daemon.Daemon, *client) {
		return accountsDaemonWith(t, cfg, pairDelay, nil, func(o *daemon.Options) {
			o.PluginHost = pluginhost.Options{HealthInterval: 50 * time.Millisecond,
				RestartBackoff: pluginhost.Backoff{Min: 10 * time.Millisecond, Max: time.Second}}
			o.OutboxSchedule = &outbox.Schedule{Delays: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond},
				Every: 100 * time.Millisecond, MaxAge: time.Minute, Jitter: 0, MaxRetryAfter: time.Second}
			o.OutboxPoll = 20 * time.Millisecond
		})
	}
	d, c := start(withS3(s3), time.Millisecond)
	c.connectSim("bucket")

	photo := bytes.Repeat([]byte("s3 photo "), 4000) // 36,000 bytes
	id := sha(photo)
	key := "wildcat/media/" + id
	now := time.Now().Unix()
	missing := "/v1/media/" + sha([]byte("never archived"))
	notFound := func(c *client, path string) {
		t.Helper()
		r := c.get(path)
		if r.status != 404 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s: %d %s %s", path, r.status, r.header.Get("Content-Type"), r.body)
		}
	}

	t.Run("archived once, streamed with ranges", func(t *testing.T) {
		c.injectMedia("bucket", "P1", "image", "image/jpeg", photo, now)
		c.injectMedia("bucket", "P2", "image", "image/jpeg", photo, now)
		for _, mid := range []string{"P1", "P2"} {
			m := c.waitArchive("bucket", mid, "archived")
			if m.MediaID != id || m.MediaURL != "/v1/media/"+id || len(m.MediaArchive.Targets) != 1 || m.MediaArchive.Targets[0] != "s3" {
				t.Fatalf("%s: %+v %+v", mid, m, m.MediaArchive)
			}
		}
		if keys := srv.Keys(t, "media", ""); len(keys) != 1 || keys[0] != key {
			t.Fatalf("bucket holds %v, want [%s]", keys, key)
		}
		if n := srv.Uploads("/media/" + key); n != 1 {
			t.Fatalf("%d uploads of the same bytes, want 1", n)
		}
		for _, r := range srv.Requests() {
			if r.Upload() && r.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
				t.Fatalf("upload without server-side encryption: %+v", r)
			}
		}
		if n, err := d.Media().Count(ctx); err != nil || n != 0 {
			t.Fatalf("the daemon's own store holds %d files (%v): only s3 is a target", n, err)
		}

		r := c.must(c.get("/v1/media/"+id), 200)
		if !bytes.Equal(r.body, photo) || r.header.Get("Content-Type") != "image/jpeg" || r.header.Get("ETag") != `"`+id+`"` {
			t.Fatalf("GET: %d bytes, %v", len(r.body), r.header)
		}
		r = c.do("GET", "/v1/media/"+id, "", "", "Range", "bytes=30000-30099")
		if r.status != 206 || !bytes.Equal(r.body, photo[30000:30100]) {
			t.Fatalf("range: %d, %q", r.status, r.body)
		}
		// Recorded once the fake server's handler returns, which may be
		// after the daemon answered (it stops reading at the range's end).
		poll.Until(t, 10*time.Second, func() error {
			if n := srv.Count(func(r s3mediatest.Request) bool {
				return r.Method == http.MethodGet && r.Header.Get("Range") == "bytes=30000-"
			}); n != 1 {
				return fmt.Errorf("%d ranged GETs from byte 30000 reached S3, want 1", n)
			}
			return nil
		})
		notFound(c, missing)
		c.must(c.get("/v1/media/not-a-sha"), 400)
	})

	t.Run("restart: still served, nothing uploaded again", func(t *testing.T) {
		if err := d.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		uploads := srv.Uploads("")
		var c2 *client
		d, c2 = start(withS3(s3), -1)
		c2.waitState("bucket", "connected")
		if b := c2.must(c2.get("/v1/media/"+id), 200).body; !bytes.Equal(b, photo) {
			t.Fatal("served bytes differ after the restart")
		}
		c2.injectMedia("bucket", "P3", "image", "image/jpeg", photo, now)
		if m := c2.waitArchive("bucket", "P3", "archived"); m.MediaID != id {
			t.Fatalf("P3: %+v", m)
		}
		if n := srv.Uploads(""); n != uploads {
			t.Fatalf("%d uploads after the restart, want none", n-uploads)
		}
	})

	t.Run("presign_ttl: redirect to a pre-signed URL", func(t *testing.T) {
		if err := d.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		presign := maps.Clone(s3)
		presign["presign_ttl"] = "10m"
		_, c3 := start(withS3(presign), -1)
		noFollow := &http.Client{Transport: http.DefaultClient.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(c3.base + "/v1/media/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusTemporaryRedirect || loc == nil || !strings.HasPrefix(loc.String(), srv.URL+"/media/"+key+"?") ||
			loc.Query().Get("X-Amz-Expires") != "600" || loc.Query().Get("X-Amz-Signature") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%d, Location %q, Cache-Control %q", resp.StatusCode, loc, resp.Header.Get("Cache-Control"))
		}
		// The URL works without the daemon's credentials.
		got, err := http.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if got.StatusCode != 200 || !bytes.Equal(b, photo) {
			t.Fatalf("pre-signed GET: %d, %d bytes", got.StatusCode, len(b))
		}
		notFound(c3, missing)
	})
}
