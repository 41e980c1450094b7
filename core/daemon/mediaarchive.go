package daemon

// The media archive's core side. The archiving itself is the mediaarchive
// plugin (plugins/mediaarchive), an outbox sink; the daemon gives it:
//   - LinkMedia (mediaLinker): the outcome recorded on the message document
//     (mediaArchive; mediaId and mediaUrl once archived) and a
//     media.archived event through the pipeline, once per message;
//   - the retention job (retainArchivedMedia): the embedded engine has no
//     TTL indexes and a plugin cannot query the media bucket or the
//     messages, so the daemon deletes, hourly, archived media whose newest
//     referencing message is older than the retention_days the plugin
//     published in its key-value store at Configure;
//   - the backfill (BackfillMediaArchive, POST /v1/media/archive): outbox
//     jobs for stored media messages, with the pipeline's job ids;
//   - serving its s3 target (servedMedia): the plugin links media it
//     archived in S3 only under its SHA-256, which is the object's key, so
//     the daemon, reading the same config block, serves GET
//     /v1/media/{id} from the bucket (or redirects to a pre-signed URL)
//     when its own store does not hold the id.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/wildcathub/wildcat/core/api"
	"github.com/wildcathub/wildcat/core/config"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/outbox"
	"github.com/wildcathub/wildcat/core/pluginhost"
	"github.com/wildcathub/wildcat/core/s3media"
	"github.com/wildcathub/wildcat/sdk"
)

// MediaArchiveTarget is the name the media archive plugin is declared
// under (plugins.mediaarchive) and so its outbox target: backfill queues
// jobs for it and retention reads its policy from its namespace.
const MediaArchiveTarget = "mediaarchive"

// mediaRetentionInterval is how often the retention job runs.
const mediaRetentionInterval = time.Hour

// mediaFetcher applies Options.WrapMediaFetch.
func (d *Daemon) mediaFetcher(f pluginhost.MediaFetcher) pluginhost.MediaFetcher {
	if d.opts.WrapMediaFetch != nil {
		return d.opts.WrapMediaFetch(f)
	}
	return f
}

// mediaLinker is the Host's LinkMedia.
type mediaLinker struct{ d *Daemon }

func (l mediaLinker) LinkMedia(ctx context.Context, link sdk.MediaLink) error {
	a := messages.MediaArchive{Status: messages.MediaArchived, SHA256: link.SHA256, Size: link.Size, Targets: link.Targets}
	if link.SkippedReason != "" {
		a.Status, a.Reason = messages.MediaSkipped, link.SkippedReason
	}
	if link.MediaID != "" && a.Status == messages.MediaArchived {
		// The id must name a stored file: mediaUrl is served from it.
		if _, err := l.d.served.Stat(ctx, link.MediaID); err != nil {
			return fmt.Errorf("link media %s: %w", link.MediaID, err)
		}
	}
	// The embedded engine applies an update as read-then-replace of the
	// whole document, so two updates of one message at once can lose one.
	// The pipeline's last write to the message (marking it processed) may
	// still be running when its outbox job is delivered: link only once it
	// is done (a temporary failure until then; the job is retried), and
	// check the link landed.
	docID := messages.DocID(link.AccountID, link.MessageID)
	// A point read: the message's pipelineDone (absent counts as done).
	cur, err := l.d.messages.Get(ctx, link.AccountID, link.MessageID)
	if err != nil {
		return messageNotFound(err)
	}
	if cur.PipelineDone != nil && !*cur.PipelineDone {
		return fmt.Errorf("%w: message %s is still going through the pipeline; link it afterwards", pluginhost.ErrUnavailable, docID)
	}
	m, changed, err := l.d.messages.SetMediaArchive(ctx, link.AccountID, link.MessageID, link.MediaID, a)
	if err != nil {
		return messageNotFound(err)
	}
	if got, err := l.d.messages.Get(ctx, link.AccountID, link.MessageID); err != nil {
		return messageNotFound(err)
	} else if got.MediaArchive == nil || got.MediaArchive.Status != a.Status || got.MediaArchive.SHA256 != a.SHA256 {
		return fmt.Errorf("%w: the link of message %s was overwritten by a concurrent update; linking again", pluginhost.ErrUnavailable, docID)
	}
	if !changed || a.Status != messages.MediaArchived {
		return nil
	}
	msg := m.Message
	msg.Raw = nil
	ev := &event.Event{
		ID:        m.ID + ":media.archived",
		Kind:      event.KindMediaArchived,
		AccountID: link.AccountID,
		Timestamp: time.Now().UTC().Truncate(time.Millisecond),
		ChatID:    msg.ChatID,
		Source:    event.SourcePlugin,
		Message:   &msg,
	}
	// The link is stored; the event is a notification on top (not stored
	// itself, so not recovered after a crash between the two).
	if err := l.d.engine.Submit(ctx, ev); err != nil {
		l.d.log.Warn("media.archived event not submitted", slog.String("event_id", ev.ID), slog.Any("error", err))
	}
	return nil
}

// mediaRetentionDays is the retention_days the media archive published; 0
// (keep forever) when it never did.
func (d *Daemon) mediaRetentionDays(ctx context.Context) (int, error) {
	v, found, err := d.pluginKV.Get(ctx, MediaArchiveTarget, "retention_days")
	if err != nil || !found {
		return 0, err
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("retention_days %q: %w", v, err)
	}
	return n, nil
}

// RetainArchivedMedia deletes from the media store every file the media
// archive linked whose newest referencing message (any message whose
// mediaId names it, archived or sent over the API) is older than the
// archive's retention_days, and marks those messages' media expired. It
// reports how many files went; with no retention set it does nothing.
func (d *Daemon) RetainArchivedMedia(ctx context.Context) (int, error) {
	days, err := d.mediaRetentionDays(ctx)
	if err != nil || days <= 0 {
		return 0, err
	}
	cutoff := time.Now().Add(-time.Duration(days) * 24 * time.Hour).Unix()
	refs, err := d.messages.MediaRefs(ctx)
	if err != nil {
		return 0, err
	}
	type use struct {
		newest   int64
		archived bool
	}
	uses := map[string]*use{}
	for _, r := range refs {
		u := uses[r.MediaID]
		if u == nil {
			u = &use{newest: r.Timestamp}
			uses[r.MediaID] = u
		}
		u.newest = max(u.newest, r.Timestamp)
		u.archived = u.archived || r.Archived
	}
	n := 0
	for id, u := range uses {
		if !u.archived || u.newest >= cutoff {
			continue
		}
		if err := d.media.Delete(ctx, id); err != nil {
			return n, err
		}
		if _, err := d.messages.ExpireMedia(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (d *Daemon) retainMedia(ctx context.Context) {
	n, err := d.RetainArchivedMedia(ctx)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("media retention failed", slog.Any("error", err))
	} else if n > 0 {
		d.log.Info("archived media expired", slog.Int("count", n))
	}
}

// ErrMediaArchiveDisabled: no media archive is configured to queue for.
var ErrMediaArchiveDisabled = fmt.Errorf("the %w", api.ErrMediaArchiveOff)

// BackfillMediaArchive queues archiving for the account's stored media
// messages (received and sent) with a timestamp at or after since (zero:
// all) that are not archived yet. Each job has the id the pipeline would
// have given it ({eventId}|mediaarchive), so a message already queued is
// not queued twice and repeating a backfill is harmless.
func (d *Daemon) BackfillMediaArchive(ctx context.Context, accountID string, since time.Time) (api.MediaBackfill, error) {
	_, sink, ok := d.registry.Plugin(MediaArchiveTarget)
	if !(ok && sink) && !d.registry.HasSink(MediaArchiveTarget) {
		return api.MediaBackfill{}, fmt.Errorf("%w: declare plugins.%s and a stage with plugin: %s, mode: sink", ErrMediaArchiveDisabled, MediaArchiveTarget, MediaArchiveTarget)
	}
	var sinceUnix int64
	if !since.IsZero() {
		sinceUnix = since.Unix()
	}
	ms, err := d.messages.MediaMessages(ctx, accountID, sinceUnix, []string{string(event.KindMessageReceived), string(event.KindMessageSent)})
	if err != nil {
		return api.MediaBackfill{}, err
	}
	out := api.MediaBackfill{Target: MediaArchiveTarget}
	var items []outbox.Item
	for _, m := range ms {
		out.Matched++
		if m.MediaArchive != nil && m.MediaArchive.Status == messages.MediaArchived {
			continue
		}
		ev := m.Event()
		if ev == nil || ev.Validate() != nil {
			continue
		}
		items = append(items, outbox.Item{Event: ev, Targets: []string{MediaArchiveTarget}})
	}
	for len(items) > 0 {
		batch := items[:min(len(items), 500)]
		items = items[len(batch):]
		if err := d.outbox.EnqueueBatch(ctx, batch); err != nil {
			return out, err
		}
		out.Queued += len(batch)
	}
	return out, nil
}

// buildServedMedia opens the media archive's s3 target, when its config
// block has one, for GET /v1/media/{id}.
func (d *Daemon) buildServedMedia(cfg config.Config) error {
	d.served = servedMedia{Store: d.media}
	pc, ok := cfg.Plugins[MediaArchiveTarget]
	if !ok {
		return nil
	}
	c, err := s3media.FromArchiveConfig(pc.Config)
	if err == nil && c != nil {
		d.served.bucket, err = s3media.Open(c)
	}
	var ce *s3media.ConfigError
	if errors.As(err, &ce) {
		return &config.Error{Key: "plugins." + MediaArchiveTarget + ".config." + ce.Key, Problem: ce.Problem}
	}
	return err
}

// servedMedia is the media store with the media archive's s3 target
// behind it: ids the store does not hold are looked up in the bucket
// (whose keys are SHA-256s, as the store's ids are). Writes, deletes,
// listings and sweeps stay the store's own.
type servedMedia struct {
	media.Store
	bucket *s3media.Bucket // nil without an s3 target
}

var _ api.MediaRedirector = servedMedia{}

func (s servedMedia) fromBucket(ctx context.Context, id string, err error) bool {
	return s.bucket != nil && errors.Is(err, media.ErrNotFound) && ctx.Err() == nil
}

func bucketError(id string, err error) error {
	if errors.Is(err, s3media.ErrNotFound) {
		return fmt.Errorf("media %q: %w", id, media.ErrNotFound)
	}
	return err
}

func infoOf(o *s3media.Object) *media.Info {
	return &media.Info{ID: o.SHA256, SHA256: o.SHA256, Size: o.Size, Mimetype: o.ContentType, Filename: o.Filename, Uploaded: o.Modified}
}

// Stat implements media.Store.
func (s servedMedia) Stat(ctx context.Context, id string) (*media.Info, error) {
	in, err := s.Store.Stat(ctx, id)
	if !s.fromBucket(ctx, id, err) {
		return in, err
	}
	o, err := s.bucket.Stat(ctx, id)
	if err != nil {
		return nil, bucketError(id, err)
	}
	return infoOf(o), nil
}

// Open implements media.Store.
func (s servedMedia) Open(ctx context.Context, id string) (*media.Reader, error) {
	r, err := s.Store.Open(ctx, id)
	if !s.fromBucket(ctx, id, err) {
		return r, err
	}
	o, rs, err := s.bucket.Open(ctx, id)
	if err != nil {
		return nil, bucketError(id, err)
	}
	return media.NewReader(infoOf(o), rs, rs), nil
}

// ReadAll implements media.Store.
func (s servedMedia) ReadAll(ctx context.Context, id string) ([]byte, *media.Info, error) {
	b, in, err := s.Store.ReadAll(ctx, id)
	if !s.fromBucket(ctx, id, err) {
		return b, in, err
	}
	r, err := s.Open(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	if r.Info.Size > s.MaxBytes() {
		return nil, nil, &media.TooLargeError{Limit: s.MaxBytes()}
	}
	b = make([]byte, r.Info.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, fmt.Errorf("read media %s from s3: %w", id, err)
	}
	return b, r.Info, nil
}

// MediaRedirect implements api.MediaRedirector: with the s3 target's
// presign_ttl set, media kept only in the bucket is answered with a
// pre-signed URL.
func (s servedMedia) MediaRedirect(ctx context.Context, id string) (string, error) {
	if s.bucket == nil || s.bucket.Config().PresignTTL <= 0 {
		return "", nil
	}
	if _, err := s.Store.Stat(ctx, id); !s.fromBucket(ctx, id, err) {
		return "", nil // the store's own (or its error, which Open meets again)
	}
	u, err := s.bucket.PresignGet(ctx, id)
	return u, bucketError(id, err)
}
