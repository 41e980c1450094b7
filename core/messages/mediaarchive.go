package messages

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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
	defer s.locks.lock(id)()
	cur, err := s.get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if old := cur.MediaArchive; old != nil && old.Status == MediaArchived {
		if a.Status != MediaArchived || (old.SHA256 == a.SHA256 && cur.MediaID == mediaID && slices.Equal(old.Targets, a.Targets)) {
			return cur, false, nil
		}
	}
	if old := cur.MediaArchive; old != nil && a.Status == MediaSkipped && old.Status == MediaSkipped && old.Reason == a.Reason {
		return cur, false, nil
	}
	if a.At.IsZero() {
		a.At = s.now().UTC().Truncate(time.Millisecond)
	}
	set := bson.D{{Key: "mediaArchive", Value: a}}
	if a.Status == MediaArchived && mediaID != "" {
		set = append(set, bson.E{Key: "mediaId", Value: mediaID}, bson.E{Key: "mediaUrl", Value: MediaPath(mediaID)})
	}
	// UpdateOne by _id alone: the embedded engine answers it from the _id
	// index (findAndModify would scan the collection).
	res, err := s.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return nil, false, fmt.Errorf("record media archive of %s: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return nil, false, fmt.Errorf("message %s: %w", id, ErrNotFound)
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
	ID        string `bson:"_id"`
	MediaID   string `bson:"mediaId"`
	Timestamp int64  `bson:"timestamp"`
	// Archived: the reference was made by the media archive.
	Archived bool `bson:"-"`
	Archive  *struct {
		Status MediaArchiveStatus `bson:"status"`
	} `bson:"mediaArchive,omitempty"`
}

// MediaRefs lists every message that references stored media (mediaId
// set). It reads only the few fields it needs, in one pass.
func (s *Store) MediaRefs(ctx context.Context) ([]MediaRef, error) {
	cur, err := s.c.Find(ctx, bson.D{{Key: "mediaId", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: ""}}}},
		options.Find().SetProjection(bson.D{{Key: "mediaId", Value: 1}, {Key: "timestamp", Value: 1}, {Key: "mediaArchive.status", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list media references: %w", err)
	}
	var refs []MediaRef
	if err := cur.All(ctx, &refs); err != nil {
		return nil, fmt.Errorf("list media references: %w", err)
	}
	for i := range refs {
		refs[i].Archived = refs[i].Archive != nil && refs[i].Archive.Status == MediaArchived
	}
	return refs, nil
}

// ExpireMedia unlinks mediaID from the messages that reference it (their
// mediaId and mediaUrl go, mediaArchive.status becomes expired), after the
// retention job deleted the file.
func (s *Store) ExpireMedia(ctx context.Context, mediaID string) (int64, error) {
	res, err := s.c.UpdateMany(ctx, bson.D{{Key: "mediaId", Value: mediaID}}, bson.D{
		{Key: "$unset", Value: bson.D{{Key: "mediaId", Value: ""}, {Key: "mediaUrl", Value: ""}}},
		{Key: "$set", Value: bson.D{{Key: "mediaArchive.status", Value: MediaExpired}, {Key: "mediaArchive.at", Value: s.now().UTC().Truncate(time.Millisecond)}}},
	})
	if err != nil {
		return 0, fmt.Errorf("expire media %s: %w", mediaID, err)
	}
	return res.ModifiedCount, nil
}

// MediaMessages returns the ids of an account's stored media messages (of
// the given kinds) with a timestamp at or after since (Unix seconds; 0 for
// all), oldest first: what a media archive backfill queues.
func (s *Store) MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error) {
	f := bson.D{{Key: "accountId", Value: accountID}, {Key: "hasMedia", Value: true}}
	if since > 0 {
		f = append(f, bson.E{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: since}}})
	}
	if len(kinds) > 0 {
		f = append(f, bson.E{Key: "kind", Value: bson.D{{Key: "$in", Value: kinds}}})
	}
	cur, err := s.c.Find(ctx, f, options.Find().SetProjection(bson.D{{Key: "rawMessage", Value: 0}}))
	if err != nil {
		return nil, fmt.Errorf("list media messages of %s: %w", accountID, err)
	}
	var out []*Message
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("list media messages of %s: %w", accountID, err)
	}
	slices.SortFunc(out, func(a, b *Message) int {
		if a.SortKey < b.SortKey {
			return -1
		}
		if a.SortKey > b.SortKey {
			return 1
		}
		return 0
	})
	return out, nil
}
