package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/core/s3media"
	"github.com/wildcathub/wildcat/sdk"
)

// Version of the plugin.
const Version = "1.0.0"

// RetentionKey is the key of the plugin's key-value store under which
// Configure publishes retention_days: the daemon's retention job, which
// can query the media bucket and the messages (a plugin cannot), reads it.
const RetentionKey = "retention_days"

// Archive is the plugin. Deliver is safe for concurrent use.
type Archive struct {
	mu     sync.RWMutex
	cfg    *Config
	bucket *s3media.Bucket // the s3 target's, nil without it

	sweepOnce sync.Once
	now       func() time.Time
}

// New returns the plugin with the default configuration.
func New() *Archive {
	c, _ := parseConfig(nil)
	return &Archive{cfg: c, now: time.Now}
}

var (
	_ sdk.Sink       = (*Archive)(nil)
	_ sdk.Configurer = (*Archive)(nil)
	_ sdk.Describer  = (*Archive)(nil)
)

// Describe names the plugin and asks for the kinds that carry messages.
func (a *Archive) Describe() sdk.Description {
	return sdk.Description{
		Name:        "mediaarchive",
		Version:     Version,
		Description: "archives the media of every media message, de-duplicated by SHA-256, in GridFS, a directory and/or an S3 bucket",
		EventKinds:  []string{"message.received", "message.sent"},
	}
}

// Configure checks the config block, prepares the dir target (and clears
// what a killed process left in its temporary directory) and publishes the
// retention policy for the daemon's retention job.
func (a *Archive) Configure(ctx context.Context, raw map[string]any) error {
	c, err := parseConfig(raw)
	if err != nil {
		return err
	}
	if c.has(TargetDir) {
		if err := os.MkdirAll(tmpDir(c.Dir), 0o750); err != nil {
			return fmt.Errorf("dir: %w", err)
		}
		cleanTemp(c.Dir)
	}
	var bucket *s3media.Bucket
	if c.has(TargetS3) {
		if bucket, err = s3media.Open(c.S3); err != nil {
			return err
		}
	}
	// Not publishing it only delays retention (the daemon keeps media it
	// has no policy for), so a store hiccup does not stop the plugin.
	if err := sdk.HostFrom(ctx).KVSet(ctx, RetentionKey, []byte(strconv.Itoa(c.RetentionDays)), 0); err != nil {
		sdk.Logger(ctx).Warn("retention_days not published; the daemon's retention job keeps media until it is", "error", err)
	}
	a.mu.Lock()
	a.cfg, a.bucket = c, bucket
	a.mu.Unlock()
	if (c.has(TargetDir) || c.has(TargetS3)) && c.RetentionDays > 0 {
		a.sweepOnce.Do(func() { go a.sweepLoop() })
	}
	return nil
}

func (a *Archive) config() *Config {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.cfg
}

func (a *Archive) s3() *s3media.Bucket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.bucket
}

// Deliver archives the media of one message event. Outcomes:
//   - OK: archived (or already archived), or skipped on purpose — too
//     large or a mimetype not allowed — with the reason recorded on the
//     message (mediaArchive.status skipped).
//   - Retry: the media is not available now (WhatsApp lost it and the
//     phone was asked to re-upload, the account's session is not running),
//     the bytes do not match the message's size or SHA-256 (a corrupted
//     download), or a store failed. The outbox dead-letters after its
//     schedule.
//   - Fail: the message or its media does not exist.
func (a *Archive) Deliver(ctx context.Context, job *sdk.Job) sdk.Result {
	ev := job.Event
	if ev == nil || ev.Message == nil || !ev.Message.HasMedia {
		return sdk.OK()
	}
	cfg := a.config()
	host := sdk.HostFrom(ctx)
	acct, id := ev.AccountID, ev.Message.MessageID
	msg, err := host.GetMessage(ctx, acct, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return sdk.Fail(fmt.Errorf("message %s of %s is not stored: %w", id, acct, err))
	}
	if err != nil {
		return sdk.Retry(err)
	}
	if msg.Media == nil {
		return sdk.Fail(fmt.Errorf("message %s of %s has no media metadata", id, acct))
	}
	md := msg.Media
	mimetype := md.Mimetype
	if mimetype == "" {
		mimetype = "application/octet-stream"
	}
	skip := func(reason string) sdk.Result {
		if err := host.LinkMedia(ctx, sdk.MediaLink{AccountID: acct, MessageID: id, SHA256: md.SHA256, Size: int64(md.Size), SkippedReason: reason}); err != nil {
			return linkError(err)
		}
		sdk.Logger(ctx).Info("media skipped", "account", acct, "message", id, "reason", reason)
		return sdk.OK()
	}
	if md.Size > 0 && md.Size > uint64(cfg.MaxBytes) {
		return skip(fmt.Sprintf("size %d bytes exceeds max_bytes %d", md.Size, cfg.MaxBytes))
	}
	if !cfg.allowed(mimetype) {
		return skip(fmt.Sprintf("mimetype %s is not in the mimetypes allow-list", mimetype))
	}
	ts := time.Unix(msg.Timestamp, 0).UTC()
	if msg.Timestamp == 0 {
		ts = ev.Timestamp.UTC()
	}
	ext := extension(mimetype)

	// De-duplication: bytes with this SHA-256 already in every target need
	// no download (blob ids are the SHA-256 of their bytes).
	if md.SHA256 != "" && a.present(ctx, cfg, acct, ts, md.SHA256, ext) {
		return a.link(ctx, cfg, acct, id, md.SHA256, md.SHA256, int64(md.Size))
	}

	rc, err := host.FetchMedia(ctx, acct, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return sdk.Fail(fmt.Errorf("media of message %s: %w", id, err))
	}
	if err != nil {
		return sdk.Retry(fmt.Errorf("fetch media: %w", err))
	}
	defer rc.Close()
	sp, err := spool(cfg, rc)
	if err != nil {
		return sdk.Retry(err)
	}
	defer sp.discard()
	if sp.size > cfg.MaxBytes {
		return skip(fmt.Sprintf("size exceeds max_bytes %d", cfg.MaxBytes))
	}
	if md.Size > 0 && uint64(sp.size) != md.Size {
		return sdk.Retry(fmt.Errorf("corrupted download: %d bytes, the message says %d", sp.size, md.Size))
	}
	if md.SHA256 != "" && sp.sha256 != md.SHA256 {
		return sdk.Retry(fmt.Errorf("corrupted download: SHA-256 %s, the message says %s", sp.sha256, md.SHA256))
	}
	mediaID := sp.sha256
	if cfg.has(TargetGridFS) {
		if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
			return sdk.Retry(err)
		}
		info, err := host.PutBlob(ctx, sdk.BlobInfo{Filename: filename(md, sp.sha256, ext), ContentType: mimetype}, sp.f)
		if err != nil {
			return sdk.Retry(fmt.Errorf("store in gridfs: %w", err))
		}
		if info.Size != sp.size {
			return sdk.Retry(fmt.Errorf("gridfs stored blob %s of %d bytes for %d bytes", info.ID, info.Size, sp.size))
		}
		// The blob's id is the SHA-256 of its bytes, or a keyed hash of
		// them when the host encrypts media at rest.
		mediaID = info.ID
	}
	if cfg.has(TargetS3) {
		if err := a.putS3(ctx, sp, mimetype, md.Filename); err != nil {
			return sdk.Retry(fmt.Errorf("store in s3: %w", err))
		}
	}
	if cfg.has(TargetDir) {
		if err := sp.commit(finalPath(cfg.Dir, acct, ts, sp.sha256, ext), a.now()); err != nil {
			return sdk.Retry(fmt.Errorf("store in dir: %w", err))
		}
	}
	return a.link(ctx, cfg, acct, id, sp.sha256, mediaID, sp.size)
}

// present reports whether bytes with SHA-256 sum are already in every
// target. A dir file found is touched: its modification time is the
// retention clock, and a newer message references it now.
func (a *Archive) present(ctx context.Context, cfg *Config, acct string, ts time.Time, sum, ext string) bool {
	if cfg.has(TargetGridFS) {
		rc, _, err := sdk.HostFrom(ctx).GetBlob(ctx, sum)
		if err != nil {
			return false
		}
		rc.Close()
	}
	if cfg.has(TargetDir) {
		p := finalPath(cfg.Dir, acct, ts, sum, ext)
		if _, err := os.Stat(p); err != nil {
			return false
		}
		now := a.now()
		_ = os.Chtimes(p, now, now)
	}
	if cfg.has(TargetS3) {
		ok, err := a.presentS3(ctx, sum)
		if err != nil {
			sdk.Logger(ctx).Warn("s3 check failed; downloading the media again", "sha256", sum, "error", err)
		}
		return ok
	}
	return true
}

func (a *Archive) link(ctx context.Context, cfg *Config, acct, id, sum, mediaID string, size int64) sdk.Result {
	l := sdk.MediaLink{AccountID: acct, MessageID: id, SHA256: sum, Size: size, Targets: cfg.Targets}
	switch {
	case cfg.has(TargetGridFS):
		l.MediaID = mediaID
	case cfg.has(TargetS3):
		// The daemon serves the s3 target's objects by their SHA-256.
		l.MediaID = sum
	}
	if err := sdk.HostFrom(ctx).LinkMedia(ctx, l); err != nil {
		return linkError(err)
	}
	return sdk.OK()
}

func linkError(err error) sdk.Result {
	if errors.Is(err, sdk.ErrNotFound) {
		return sdk.Fail(fmt.Errorf("link media: %w", err))
	}
	return sdk.Retry(fmt.Errorf("link media: %w", err))
}

func filename(md *sdk.Media, sum, ext string) string {
	if md.Filename != "" {
		return md.Filename
	}
	return sum + "." + ext
}

// spooled is the downloaded bytes in a temporary file, hashed on the way.
type spooled struct {
	f      *os.File
	size   int64
	sha256 string
}

// spool copies up to cfg.MaxBytes+1 bytes of r into a temporary file (in
// the dir target's temporary directory, so the final rename stays on one
// file system), hashing them as they stream.
func spool(cfg *Config, r io.Reader) (*spooled, error) {
	dir := ""
	if cfg.has(TargetDir) {
		dir = tmpDir(cfg.Dir)
	}
	f, err := os.CreateTemp(dir, tempPrefix()+"*")
	if err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, cfg.MaxBytes+1))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("download media: %w", err)
	}
	return &spooled{f: f, size: n, sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

func (s *spooled) discard() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
		s.f = nil
	}
}
