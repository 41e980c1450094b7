package messages

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// MediaArchiveStatus is what became of a message's media in the archive.
type MediaArchiveStatus string

const (
	// MediaArchived: the bytes are archived (and, with a mediaId, servable
	// by GET /v1/media/{mediaId}).
	MediaArchived MediaArchiveStatus = "archived"
	// MediaSkipped: not archived on purpose (too large, mimetype not
	// allowed); Reason says why.
	MediaSkipped MediaArchiveStatus = "skipped"
	// MediaExpired: archived, then deleted by the retention job.
	MediaExpired MediaArchiveStatus = "expired"
)

// MediaArchive is the mediaArchive field of a message document.
type MediaArchive struct {
	Status  MediaArchiveStatus `bson:"status" json:"status"`
	SHA256  string             `bson:"sha256,omitempty" json:"sha256,omitempty"`
	Size    int64              `bson:"size,omitempty" json:"size,omitempty"`
	Targets []string           `bson:"targets,omitempty" json:"targets,omitempty"`
	Reason  string             `bson:"reason,omitempty" json:"reason,omitempty"`
	At      time.Time          `bson:"at" json:"at"`
}

// MediaPath is the URL path of stored media: GET /v1/media/{mediaId}.
func MediaPath(mediaID string) string { return "/v1/media/" + mediaID }

// SetMediaArchive records a on the message's document; for an archived
// status with mediaID set it also sets mediaId and mediaUrl. It returns the
// updated document and whether anything changed: recording the same
// outcome again (a retried job) changes nothing, so its caller emits
// media.archived once. A message already archived is not downgraded to
// skipped. ErrNotFound when the message is not stored.
func (s *Store) SetMediaArchive(ctx context.Context, accountID, messageID, mediaID string, a MediaArchive) (*Message, bool, error) {
	id := DocID(accountID, messageID)
	if a.At.IsZero() {
		a.At = s.now().UTC().Truncate(time.Millisecond)
	}
	cur, changed, err := s.b.SetMediaArchive(ctx, id, mediaID, a, func(cur *Message) bool {
		if old := cur.MediaArchive; old != nil && old.Status == MediaArchived {
			if a.Status != MediaArchived || (old.SHA256 == a.SHA256 && cur.MediaID == mediaID && slices.Equal(old.Targets, a.Targets)) {
				return true
			}
		}
		old := cur.MediaArchive
		return old != nil && a.Status == MediaSkipped && old.Status == MediaSkipped && old.Reason == a.Reason
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("record media archive of %s: %w", id, err)
	}
	if !changed {
		return cur, false, nil
	}
	out := *cur
	out.MediaArchive = &a
	if a.Status == MediaArchived && mediaID != "" {
		out.MediaID, out.MediaURL = mediaID, MediaPath(mediaID)
	}
	return &out, true, nil
}

// MediaRef is one message's reference to stored media.
type MediaRef struct {
	ID        string
	MediaID   string
	Timestamp int64
	// Archived: the reference was made by the media archive.
	Archived bool
}

// MediaRefs lists every message that references stored media (mediaId
// set). It reads only the few fields it needs, in one pass.
func (s *Store) MediaRefs(ctx context.Context) ([]MediaRef, error) {
	refs, err := s.b.MediaRefs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list media references: %w", err)
	}
	return refs, nil
}

// ExpireMedia unlinks mediaID from the messages that reference it (their
// mediaId and mediaUrl go, mediaArchive.status becomes expired), after the
// retention job deleted the file.
func (s *Store) ExpireMedia(ctx context.Context, mediaID string) (int64, error) {
	n, err := s.b.ExpireMedia(ctx, mediaID, s.now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return 0, fmt.Errorf("expire media %s: %w", mediaID, err)
	}
	return n, nil
}

// MediaMessages returns the ids of an account's stored media messages (of
// the given kinds) with a timestamp at or after since (Unix seconds; 0 for
// all), oldest first: what a media archive backfill queues.
func (s *Store) MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error) {
	out, err := s.b.MediaMessages(ctx, accountID, since, kinds)
	if err != nil {
		return nil, fmt.Errorf("list media messages of %s: %w", accountID, err)
	}
	return out, nil
}
