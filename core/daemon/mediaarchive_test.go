package daemon_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pipeline"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// mediaFaults wraps the plugins' media fetcher: corrupted downloads, media
// gone from WhatsApp (the driver's ErrMediaRetryRequested) a number of
// times, and a gate that holds every fetch after the first gateAt.
type mediaFaults struct {
	mu      sync.Mutex
	corrupt map[string]bool
	gone    map[string]int
	fetches int
	gateAt  int
	gate    chan struct{}
	gated   chan struct{} // closed when the first fetch is held
	once    sync.Once
}

type fetchFunc func(ctx context.Context, accountID, messageID string) (io.ReadCloser, error)

func (f fetchFunc) FetchMedia(ctx context.Context, a, m string) (io.ReadCloser, error) {
	return f(ctx, a, m)
}

func (f *mediaFaults) wrap(next pluginhost.MediaFetcher) pluginhost.MediaFetcher {
	return fetchFunc(func(ctx context.Context, acct, id string) (io.ReadCloser, error) {
		f.mu.Lock()
		f.fetches++
		hold := f.gate != nil && f.fetches > f.gateAt
		if f.gone[id] > 0 {
			f.gone[id]--
			f.mu.Unlock()
			return nil, fmt.Errorf("download %s: %w", id, session.ErrMediaRetryRequested)
		}
		corrupt := f.corrupt[id]
		gate := f.gate
		f.mu.Unlock()
		if hold {
			f.once.Do(func() { close(f.gated) })
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		rc, err := next.FetchMedia(ctx, acct, id)
		if err != nil || !corrupt {
			return rc, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		b[0] ^= 0xff
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// injectMedia makes a sim account receive a media message.
func (c *client) injectMedia(acct, id, kind, mimetype string, data []byte, ts int64) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"from": "+15550001111", "id": id, "timestamp": ts,
		"media": map[string]any{"kind": kind, "mimetype": mimetype, "data": base64.StdEncoding.EncodeToString(data)}})
	c.inject(acct, string(body))
}

type archivedMessage struct {
	MediaID      string `json:"mediaId"`
	MediaURL     string `json:"mediaUrl"`
	MediaArchive *struct {
		Status  string   `json:"status"`
		SHA256  string   `json:"sha256"`
		Reason  string   `json:"reason"`
		Targets []string `json:"targets"`
	} `json:"mediaArchive"`
}

func (c *client) archived(acct, id string) archivedMessage {
	c.t.Helper()
	var m archivedMessage
	if err := json.Unmarshal(c.must(c.get("/v1/accounts/"+acct+"/messages/"+id), 200).body, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// waitArchive waits until the message's media has the status.
func (c *client) waitArchive(acct, id, status string) archivedMessage {
	c.t.Helper()
	var m archivedMessage
	poll.Until(c.t, 2*time.Minute, func() error {
		r := c.get("/v1/accounts/" + acct + "/messages/" + id)
		if r.status != 200 {
			return fmt.Errorf("%s: status %d", id, r.status) // not stored yet
		}
		m = archivedMessage{}
		if err := json.Unmarshal(r.body, &m); err != nil {
			return err
		}
		if m.MediaArchive == nil || m.MediaArchive.Status != status {
			return fmt.Errorf("%s: media archive %+v, want %s", id, m.MediaArchive, status)
		}
		return nil
	})
	return m
}

func dirFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	return files
}

func mediaArchiveDaemon(t *testing.T, pluginCfg map[string]any, stages []pipeline.StageConfig, faults *mediaFaults, sinks map[string]outbox.Sink, sched *outbox.Schedule, ownStore bool) (*daemon.Daemon, *client) {
	t.Helper()
	// ownStore: the daemon's own embedded engine, as `make run` has it;
	// else the MongoDB test server.
	cfg := engineConfig(t, storetest.MongoDB)
	if ownStore {
		cfg = engineConfig(t, storetest.SQLite)
	}
	cfg.Plugins = map[string]pluginhost.Config{
		daemon.MediaArchiveTarget: {Path: pluginBin("mediaarchive"), Config: pluginCfg, Timeout: 30 * time.Second},
	}
	cfg.Pipeline = stages
	return accountsDaemonWith(t, cfg, time.Millisecond, nil, func(o *daemon.Options) {
		o.WrapMediaFetch = faults.wrap
		o.Sinks = sinks
		o.PluginHost = pluginhost.Options{
			HealthInterval: 50 * time.Millisecond,
			RestartBackoff: pluginhost.Backoff{Min: 10 * time.Millisecond, Max: time.Second},
		}
		o.OutboxSchedule = sched
		o.OutboxPoll = 20 * time.Millisecond
	})
}

// The shipped stage: media messages in and out go to the archive.
func archiveStage(accounts ...string) pipeline.StageConfig {
	yes := true
	return pipeline.StageConfig{Name: "archive", Plugin: daemon.MediaArchiveTarget, Mode: pipeline.ModeSink,
		Match: pipeline.Match{Kinds: []string{"message.received", "message.sent"}, HasMedia: &yes, Accounts: accounts}}
}

// TestMediaArchive runs the real plugin binary under the daemon's plugin
// host and outbox, on sim media: archive to GridFS and a directory,
// de-duplication, GET /v1/media/{mediaId} byte for byte, the
// media.archived event, size and mimetype limits, a corrupted download
// retried then dead-lettered, the media-gone path, backfill and retention;
// on either engine's media store.
func TestMediaArchive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { mediaArchive(t, e) })
}

func mediaArchive(t *testing.T, e storetest.Engine) {
	dir := t.TempDir()
	faults := &mediaFaults{corrupt: map[string]bool{"CORRUPT1": true}, gone: map[string]int{"GONE1": 2}}
	events := &countingSink{}
	stages := []pipeline.StageConfig{
		archiveStage("arch"),
		{Name: "archived-events", Sink: "archived-events", Match: pipeline.Match{Kinds: []string{"media.archived"}, Sources: []string{"plugin"}}},
	}
	d, c := mediaArchiveDaemon(t, map[string]any{
		"targets": []any{"gridfs", "dir"}, "dir": dir, "max_bytes": float64(4000),
		"mimetypes": []any{"image/*", "application/pdf"}, "retention_days": float64(30),
	}, stages, faults, map[string]outbox.Sink{"archived-events": events},
		// Short: the corrupted download is dead-lettered a few seconds
		// after its first attempt, after several retries.
		&outbox.Schedule{Delays: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
			Every: 100 * time.Millisecond, MaxAge: 3 * time.Second, Jitter: 0, MaxRetryAfter: time.Second}, e == storetest.SQLite)
	c.connectSim("arch")
	c.connectSim("late")
	ctx := context.Background()
	now := time.Now().Unix()
	stored := func() int64 {
		n, err := d.Media().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	photo := bytes.Repeat([]byte("photo-"), 500) // 3,000 bytes
	t.Run("gridfs and dir, de-duplicated, served byte for byte", func(t *testing.T) {
		for _, id := range []string{"SAME1", "SAME2", "SAME3"} {
			c.injectMedia("arch", id, "image", "image/jpeg", photo, now)
		}
		for _, id := range []string{"SAME1", "SAME2", "SAME3"} {
			m := c.waitArchive("arch", id, "archived")
			if m.MediaID != sha(photo) || m.MediaURL != "/v1/media/"+sha(photo) || m.MediaArchive.SHA256 != sha(photo) {
				t.Fatalf("%s: %+v", id, m)
			}
		}
		if n := stored(); n != 1 {
			t.Fatalf("%d files in the media store, want 1", n)
		}
		r := c.must(c.get("/v1/media/"+sha(photo)), 200)
		if !bytes.Equal(r.body, photo) || r.header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("GET /v1/media: %d bytes, type %q", len(r.body), r.header.Get("Content-Type"))
		}
		ts := time.Unix(now, 0).UTC()
		want := filepath.Join("arch", ts.Format("2006"), ts.Format("01"), sha(photo)+".jpg")
		got := dirFiles(t, dir)
		if len(got) != 1 || got[0] != want {
			t.Fatalf("dir holds %v, want [%s]", got, want)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, want)); !bytes.Equal(b, photo) {
			t.Fatal("dir file differs")
		}
		// One media.archived event per message, with the link.
		poll.Until(t, 10*time.Second, func() error {
			for _, id := range []string{"SAME1", "SAME2", "SAME3"} {
				if n := events.count("arch:" + id + ":media.archived"); n != 1 {
					return fmt.Errorf("%s: %d media.archived events", id, n)
				}
			}
			return nil
		})
	})

	t.Run("size and mimetype limits skip with a reason", func(t *testing.T) {
		c.injectMedia("arch", "BIG1", "image", "image/png", bytes.Repeat([]byte{1}, 4001), now)
		c.injectMedia("arch", "VID1", "video", "video/mp4", []byte("a short video"), now)
		if m := c.waitArchive("arch", "BIG1", "skipped"); !strings.Contains(m.MediaArchive.Reason, "max_bytes 4000") || m.MediaURL != "" {
			t.Fatalf("big: %+v", m.MediaArchive)
		}
		if m := c.waitArchive("arch", "VID1", "skipped"); !strings.Contains(m.MediaArchive.Reason, "video/mp4") || m.MediaURL != "" {
			t.Fatalf("video: %+v", m.MediaArchive)
		}
		if n := stored(); n != 1 {
			t.Fatalf("skipped media stored: %d files", n)
		}
	})

	t.Run("corrupted download retried then dead-lettered", func(t *testing.T) {
		c.injectMedia("arch", "CORRUPT1", "image", "image/jpeg", []byte("bytes that arrive damaged"), now)
		jobID := outbox.JobID("arch:CORRUPT1", daemon.MediaArchiveTarget)
		var j *outbox.Job
		poll.Until(t, 30*time.Second, func() error {
			var err error
			if j, err = d.Outbox().Get(ctx, jobID); err != nil {
				return err
			}
			if j.State != outbox.StateDeadLetter {
				return fmt.Errorf("job %s", j.State)
			}
			return nil
		})
		if j.Attempts < 2 || !strings.Contains(j.LastError, "SHA-256") {
			t.Fatalf("dead letter after %d attempts: %s", j.Attempts, j.LastError)
		}
		for _, a := range j.Log {
			if a.Result != outbox.OutcomeRetry {
				t.Fatalf("attempt %+v", a)
			}
		}
		if m := c.archived("arch", "CORRUPT1"); m.MediaArchive != nil || m.MediaURL != "" {
			t.Fatalf("corrupted media linked: %+v", m)
		}
		if c.get("/v1/media/"+sha([]byte("bytes that arrive damaged"))).status != 404 {
			t.Fatal("corrupted media stored")
		}
	})

	t.Run("media gone: re-upload requested, retried, archived", func(t *testing.T) {
		data := []byte("expired on the CDN, re-uploaded by the phone")
		c.injectMedia("arch", "GONE1", "document", "application/pdf", data, now)
		m := c.waitArchive("arch", "GONE1", "archived")
		if m.MediaID != sha(data) {
			t.Fatalf("%+v", m)
		}
		var j *outbox.Job
		poll.Until(t, 10*time.Second, func() error { // the link is made before the attempt is recorded
			var err error
			if j, err = d.Outbox().Get(ctx, outbox.JobID("arch:GONE1", daemon.MediaArchiveTarget)); err == nil && j.State != outbox.StateDone {
				err = fmt.Errorf("job %s", j.State)
			}
			return err
		})
		// Two fetches answered "re-upload requested", each a retry; then
		// archived (a link attempted before the pipeline finished the
		// message is one more retry).
		last := j.Log[len(j.Log)-1]
		if len(j.Log) < 3 || last.Result != outbox.OutcomeOK {
			t.Fatalf("job %+v", j)
		}
		for _, a := range j.Log[:2] {
			if a.Result != outbox.OutcomeRetry || !strings.Contains(a.Error, "re-upload") {
				t.Fatalf("attempt %+v", a)
			}
		}
		if b := c.must(c.get(m.MediaURL), 200).body; !bytes.Equal(b, data) {
			t.Fatal("served bytes differ")
		}
	})

	t.Run("backfill", func(t *testing.T) {
		// "late" is not archived by the pipeline (the stage matches arch).
		early, later := []byte("before the cut"), []byte("after the cut")
		c.injectMedia("late", "OLD1", "image", "image/jpeg", early, now-3600)
		c.injectMedia("late", "NEW1", "image", "image/jpeg", later, now-60)
		c.injectMedia("late", "NEW2", "image", "image/jpeg", later, now-30)
		since := time.Unix(now-600, 0).UTC().Format(time.RFC3339)
		for range 2 { // repeating a backfill queues nothing twice
			r := c.must(c.post("/v1/media/archive", `{"account":"late","since":"`+since+`"}`), 202).json(t)
			if r["matched"] != float64(2) || r["target"] != daemon.MediaArchiveTarget {
				t.Fatalf("backfill answer %v", r)
			}
		}
		c.waitArchive("late", "NEW1", "archived")
		c.waitArchive("late", "NEW2", "archived")
		if m := c.archived("late", "OLD1"); m.MediaArchive != nil {
			t.Fatalf("message before since archived: %+v", m)
		}
		poll.Until(t, 10*time.Second, func() error {
			if n := events.count("late:NEW1:media.archived"); n != 1 {
				return fmt.Errorf("%d events", n)
			}
			return nil
		})
		if r := c.must(c.post("/v1/media/archive", `{"account":"late"}`), 202).json(t); r["matched"] != float64(3) || r["queued"] != float64(1) {
			t.Fatalf("backfill of everything: %v", r)
		}
		c.waitArchive("late", "OLD1", "archived")
		c.must(c.post("/v1/media/archive", `{"account":"nobody"}`), 404)
		c.must(c.post("/v1/media/archive", `{}`), 400)
	})

	t.Run("retention", func(t *testing.T) {
		old := now - 40*24*3600
		gone, kept := []byte("only old messages"), []byte("old and new messages")
		c.injectMedia("arch", "RET1", "image", "image/jpeg", gone, old)
		c.injectMedia("arch", "RET2", "image", "image/jpeg", kept, old)
		c.injectMedia("arch", "RET3", "image", "image/jpeg", kept, now)
		for _, id := range []string{"RET1", "RET2", "RET3"} {
			c.waitArchive("arch", id, "archived")
		}
		n, err := d.RetainArchivedMedia(ctx)
		if err != nil || n != 1 {
			t.Fatalf("retention deleted %d, %v", n, err)
		}
		c.must(c.get("/v1/media/"+sha(gone)), 404)
		if m := c.archived("arch", "RET1"); m.MediaArchive == nil || m.MediaArchive.Status != "expired" || m.MediaURL != "" || m.MediaID != "" {
			t.Fatalf("expired message: %+v", m)
		}
		if b := c.must(c.get("/v1/media/"+sha(kept)), 200).body; !bytes.Equal(b, kept) {
			t.Fatal("media referenced by a newer message was touched")
		}
		if b := c.must(c.get("/v1/media/"+sha(photo)), 200).body; !bytes.Equal(b, photo) {
			t.Fatal("recent media deleted")
		}
		if n, err := d.RetainArchivedMedia(ctx); err != nil || n != 0 {
			t.Fatalf("second run deleted %d, %v", n, err)
		}
	})
}

// TestMediaArchiveCrashResumes kills the plugin process (SIGKILL) in the
// middle of a run of distinct media messages, while fetches are held so
// jobs are in flight: the plugin host restarts it, the outbox retries, and
// every file ends up archived exactly once in each target, with no
// temporary or partial file left.
//
// It runs on the daemon's own embedded engine, as `make run` does (the
// outbox in SQLite): with the shared test engine's URI the outbox claims in
// MongoDB's shared mode, a sorted findAndModify that FerretDB v1 answers by
// scanning the collection, which makes 1,000 queued jobs crawl (about 1.6
// jobs/s).
func TestMediaArchiveCrashResumes(t *testing.T) {
	const total = 1000
	start := time.Now()
	dir := t.TempDir()
	faults := &mediaFaults{gateAt: 200, gate: make(chan struct{}), gated: make(chan struct{})}
	d, c := mediaArchiveDaemon(t, map[string]any{"targets": []any{"gridfs", "dir"}, "dir": dir}, []pipeline.StageConfig{archiveStage()}, faults, nil,
		// Quick retries, and long enough that no job runs out of schedule.
		&outbox.Schedule{Delays: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond},
			Every: 200 * time.Millisecond, MaxAge: time.Hour, Jitter: 0, MaxRetryAfter: time.Second}, true)
	c.connectSim("crash")
	ctx := context.Background()
	now := time.Now().Unix()
	want := map[string]bool{}
	for i := range total {
		data := []byte(fmt.Sprintf("media file %04d %s", i, strings.Repeat("x", i%200)))
		want[sha(data)] = true
		c.injectMedia("crash", fmt.Sprintf("CR%04d", i), "image", "image/jpeg", data, now)
	}
	t.Logf("injected %d in %v", total, time.Since(start))
	select {
	case <-faults.gated:
	case <-time.After(10 * time.Minute):
		t.Fatal("the archive never reached the held fetches")
	}
	var pid int
	for _, st := range d.Plugins().Status() {
		if st.Name == daemon.MediaArchiveTarget {
			pid = st.PID
		}
	}
	if pid == 0 {
		t.Fatal("no plugin pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		for _, st := range d.Plugins().Status() {
			if st.Name == daemon.MediaArchiveTarget && st.Restarts > 0 && st.State == pluginhost.StateRunning {
				return nil
			}
		}
		return errors.New("plugin not restarted yet")
	})
	t.Logf("killed and restarted at %v", time.Since(start))
	close(faults.gate)

	poll.Until(t, 10*time.Minute, func() error {
		ms, err := d.Messages().MediaMessages(ctx, "crash", 0, nil)
		n := 0
		for _, m := range ms {
			if m.MediaArchive != nil && m.MediaArchive.Status == messages.MediaArchived {
				n++
			}
		}
		if err != nil || n != total {
			return fmt.Errorf("%d of %d archived (%v)%s", n, total, err, unarchivedJobs(ctx, d, total-int(n)))
		}
		return nil
	})
	t.Logf("all archived at %v", time.Since(start))
	ts := time.Unix(now, 0).UTC()
	got := dirFiles(t, dir)
	if len(got) != total {
		t.Fatalf("%d files in the dir target, want %d", len(got), total)
	}
	for _, f := range got {
		base := filepath.Base(f)
		if filepath.Dir(f) != filepath.Join("crash", ts.Format("2006"), ts.Format("01")) || !want[strings.TrimSuffix(base, ".jpg")] {
			t.Fatalf("unexpected file %s (a temporary or partial file?)", f)
		}
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || sha(b) != strings.TrimSuffix(base, ".jpg") {
			t.Fatalf("%s does not hold its bytes: %v", f, err)
		}
	}
	fs, err := d.Media().List(ctx, "", 10*total)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		if !want[f.ID] || seen[f.ID] {
			t.Fatalf("media store file %s unexpected or twice", f.ID)
		}
		seen[f.ID] = true
		if b, _, err := d.Media().ReadAll(ctx, f.ID); err != nil || sha(b) != f.ID {
			t.Fatalf("media store file %s does not hold its bytes: %v", f.ID, err)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d files in the media store, want %d", len(seen), total)
	}
}

// TestMediaArchiveWhatsApp archives through the whatsmeow driver's
// encrypted-download path: a contact of the protocol double sends an
// encrypted image, the plugin's FetchMedia makes the driver download and
// decrypt it, and the archived copy is served byte for byte.
func TestMediaArchiveWhatsApp(t *testing.T) {
	wa := watest.New(t)
	cfg := accountsConfig(t)
	cfg.Plugins = map[string]pluginhost.Config{
		daemon.MediaArchiveTarget: {Path: pluginBin("mediaarchive"), Timeout: 30 * time.Second},
	}
	cfg.Pipeline = []pipeline.StageConfig{archiveStage()}
	d, err := daemon.New(cfg, daemon.Options{
		NoSignals:       true,
		WhatsApp:        whatsappDriver(wa),
		ConnectRetryMin: 10 * time.Millisecond, ConnectRetryMax: 100 * time.Millisecond,
		OutboxPoll: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: "http://" + d.Addr()}
	poll.Until(t, 30*time.Second, wantStatus(c.base+"/readyz", 200))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.must(c.post("/v1/accounts", `{"id":"shop","driver":"whatsapp","name":"Shop"}`), 201)
	c.must(c.post("/v1/accounts/shop/connect", ""), 202)
	var code string
	poll.Until(t, 30*time.Second, func() error {
		r := c.get("/v1/accounts/shop/qr")
		if r.status != 200 {
			return fmt.Errorf("qr: %d", r.status)
		}
		code, _ = r.json(t)["code"].(string)
		if code == "" {
			return errors.New("no qr code yet")
		}
		return nil
	})
	phone, err := wa.ScanQR(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	c.waitState("shop", "connected")

	img := bytes.Repeat([]byte("encrypted jpeg "), 20_000) // 300 KB: two GridFS chunks
	id, err := wa.Contact("15557770001").SendImage(ctx, phone.JID().ToNonAD(), img, "image/jpeg", "archive me")
	if err != nil {
		t.Fatal(err)
	}
	m := c.waitArchive("shop", id, "archived")
	if m.MediaID != sha(img) || m.MediaURL != "/v1/media/"+sha(img) {
		t.Fatalf("%+v", m)
	}
	if b := c.must(c.get(m.MediaURL), 200).body; !bytes.Equal(b, img) {
		t.Fatalf("served %d bytes, want the %d sent", len(b), len(img))
	}
}

// unarchivedJobs describes the outbox jobs of the last few messages of the
// crash account that are not archived, for a failure message.
func unarchivedJobs(ctx context.Context, d *daemon.Daemon, missing int) string {
	if missing > 50 {
		return ""
	}
	ms, err := d.Messages().MediaMessages(ctx, "crash", 0, []string{string(event.KindMessageReceived)})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, m := range ms {
		if m.MediaArchive != nil && m.MediaArchive.Status == messages.MediaArchived {
			continue
		}
		j, err := d.Outbox().Get(ctx, outbox.JobID(m.ID, daemon.MediaArchiveTarget))
		if err != nil {
			fmt.Fprintf(&b, "\n%s: no job: %v", m.ID, err)
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s attempts=%d runAt=%s lease=%v last=%q", m.ID, j.State, j.Attempts, j.RunAt.Format(time.RFC3339Nano), j.LeaseUntil, j.LastError)
	}
	return b.String()
}
