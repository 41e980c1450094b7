package messages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// mongoBackend keeps messages in the messages collection and chats in the
// chats collection (indexes: core/store's schema). MongoDB has no
// multi-document transaction here, so a message and its chat are two
// writes; the chat is a derived view and its failure is logged, never
// returned, so that it cannot make the message look unstored (and be
// redelivered forever).
type mongoBackend struct {
	c     *mongo.Collection
	chats *mongo.Collection
	log   *slog.Logger
	// locks serialise this process's writes to one document for FerretDB,
	// whose updates are read-modify-write without isolation (lock.go).
	locks docLocks
	// writes batches concurrent inserts and done marks (store.Bulk).
	writes *store.Bulk
}

func newMongoBackend(db *mongo.Database, log *slog.Logger) *mongoBackend {
	c := db.Collection(store.Messages)
	return &mongoBackend{c: c, chats: db.Collection(store.Chats), log: log, writes: store.NewBulk(c)}
}

func (b *mongoBackend) Insert(ctx context.Context, m *Message, chat *chatUpdate) error {
	if err := b.writes.Do(ctx, mongo.NewInsertOneModel().SetDocument(m)); err != nil {
		if store.IsDuplicateKey(err) {
			return ErrExists
		}
		return err
	}
	if chat != nil {
		if err := b.foldIntoChat(ctx, chat); err != nil {
			b.log.Warn("chat not updated", slog.String("account", m.AccountID), slog.String("chat", m.ChatID),
				slog.String("message", m.MessageID), slog.Any("error", err))
		}
	}
	return nil
}

func (b *mongoBackend) foldIntoChat(ctx context.Context, u *chatUpdate) error {
	id := ChatDocID(u.AccountID, u.ChatID)
	// FerretDB v1 (the tests' MongoDB server) updates read-modify-write
	// without isolation (even $inc), so this daemon's writes to one chat go
	// one at a time; an account is served by one daemon at a time.
	defer b.locks.lock(id)()
	var c Chat
	err := b.chats.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read chat %s: %w", id, err)
	}
	u.apply(&c)
	if _, err := b.chats.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, c, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("write chat %s: %w", id, err)
	}
	return nil
}

func (b *mongoBackend) NameChat(ctx context.Context, accountID, chatID, name string, at, now time.Time) error {
	id := ChatDocID(accountID, chatID)
	defer b.locks.lock(id)()
	var c Chat
	err := b.chats.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&c)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("read chat %s: %w", id, err)
	}
	c.rename(accountID, chatID, name, at, now)
	if _, err := b.chats.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, c, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("write chat %s: %w", id, err)
	}
	return nil
}

func (b *mongoBackend) CompletePending(ctx context.Context, doc *Message, merge func(cur, m *Message) bool) (bool, error) {
	defer b.locks.lock(doc.ID)()
	cur, err := b.Get(ctx, doc.ID)
	if err != nil {
		return false, err
	}
	if !merge(cur, doc) {
		return false, nil
	}
	res, err := b.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "rev", Value: cur.Rev}}, doc)
	if err != nil {
		return false, err
	}
	return res.MatchedCount > 0, nil
}

func (b *mongoBackend) Get(ctx context.Context, id string) (*Message, error) {
	var m Message
	err := b.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %s: %w", id, err)
	}
	return &m, nil
}

func (b *mongoBackend) SetStatus(ctx context.Context, id string, st Status, rank int, at time.Time) (bool, error) {
	defer b.locks.lock(id)()
	res, err := b.c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "statusRank", Value: bson.D{{Key: "$lt", Value: rank}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: st},
			{Key: "statusRank", Value: rank},
			{Key: "statusAt", Value: at},
		}}})
	if err != nil {
		return false, err
	}
	return res.ModifiedCount > 0, nil
}

func (b *mongoBackend) MarkChatRead(ctx context.Context, accountID, chatID string, at time.Time) error {
	id := ChatDocID(accountID, chatID)
	defer b.locks.lock(id)()
	_, err := b.chats.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "unreadCount", Value: bson.D{{Key: "$gt", Value: 0}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "unreadCount", Value: 0}, {Key: "updatedAt", Value: at}}}})
	return err
}

// maxEditAttempts bounds the optimistic-concurrency loop of Edit; two
// edits of one message racing is rare, many is a bug.
const maxEditAttempts = 5

func (b *mongoBackend) Edit(ctx context.Context, id, editID, text string, at time.Time) (bool, error) {
	defer b.locks.lock(id)()
	for range maxEditAttempts {
		cur, err := b.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		for _, h := range cur.EditHistory {
			if editID != "" && h.EditID == editID {
				return false, nil
			}
		}
		set := bson.D{
			{Key: "text", Value: text},
			{Key: "edited", Value: true},
			{Key: "editedAt", Value: at},
		}
		if cur.Media != nil {
			set = append(set, bson.E{Key: "media.caption", Value: text})
		}
		res, err := b.c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "rev", Value: cur.Rev}},
			bson.D{
				{Key: "$set", Value: set},
				{Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}},
				{Key: "$push", Value: bson.D{{Key: "editHistory", Value: PreviousText{Text: cur.Text, EditID: editID, At: at}}}},
			})
		if err != nil {
			return false, err
		}
		if res.MatchedCount > 0 {
			return true, nil
		}
		// Another edit won the race; read again.
	}
	return false, fmt.Errorf("still contended after %d attempts", maxEditAttempts)
}

func (b *mongoBackend) Revoke(ctx context.Context, id, by string, at time.Time) (bool, error) {
	defer b.locks.lock(id)()
	res, err := b.c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked", Value: bson.D{{Key: "$ne", Value: true}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "revoked", Value: true},
			{Key: "revokedBy", Value: by},
			{Key: "revokedAt", Value: at},
		}}})
	if err != nil {
		return false, err
	}
	return res.ModifiedCount > 0, nil
}

func (b *mongoBackend) MarkFailed(ctx context.Context, id, reason string, at time.Time) (bool, error) {
	defer b.locks.lock(id)()
	res, err := b.c.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusPending}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: StatusFailed},
			{Key: "error", Value: reason},
			{Key: "statusAt", Value: at},
		}}})
	if err != nil {
		return false, err
	}
	return res.ModifiedCount > 0, nil
}

func (b *mongoBackend) FailStalePending(ctx context.Context, cutoff time.Time, reason string, at time.Time) (int, error) {
	cur, err := b.c.Find(ctx, bson.D{
		{Key: "status", Value: StatusPending},
		{Key: "storedAt", Value: bson.D{{Key: "$lt", Value: cutoff}}},
	}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
	if err != nil {
		return 0, fmt.Errorf("find: %w", err)
	}
	var stale []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &stale); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	n := 0
	for _, m := range stale {
		// One conditional update each: a send that completed meanwhile is
		// no longer pending and stays as it is.
		ok, err := b.MarkFailed(ctx, m.ID, reason, at)
		if err != nil {
			return n, fmt.Errorf("mark %s failed: %w", m.ID, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (b *mongoBackend) Annotate(ctx context.Context, id string, tags []string, annotations map[string]string) error {
	update := bson.D{}
	if len(tags) > 0 {
		update = append(update, bson.E{Key: "$addToSet", Value: bson.D{{Key: "tags", Value: bson.D{{Key: "$each", Value: tags}}}}})
	}
	if len(annotations) > 0 {
		set := bson.D{}
		for k, v := range annotations {
			set = append(set, bson.E{Key: "annotations." + k, Value: v})
		}
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	defer b.locks.lock(id)()
	_, err := b.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	return err
}

func (b *mongoBackend) RecordFailures(ctx context.Context, id string, fs []ActionFailure) error {
	// Read, merge, write back if nobody changed the document meanwhile
	// (rev), as an edit does: the merge replaces entries by key, which no
	// single update operator expresses.
	defer b.locks.lock(id)()
	for range maxEditAttempts {
		cur, err := b.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		rev := cur.Rev
		mergeFailures(cur, fs)
		res, err := b.c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: id}, {Key: "rev", Value: rev}},
			bson.D{
				{Key: "$set", Value: bson.D{{Key: "failures", Value: cur.Failures}}},
				{Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}},
			})
		if err != nil {
			return err
		}
		if res.MatchedCount > 0 {
			return nil
		}
	}
	return fmt.Errorf("still contended after %d attempts", maxEditAttempts)
}

func (b *mongoBackend) MarkProcessed(ctx context.Context, id string, at time.Time) error {
	// Even a plain $set is read-modify-write on FerretDB v1: without
	// the lock it could undo a receipt or a media link written meanwhile.
	defer b.locks.lock(id)()
	return b.writes.Do(ctx, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).
		SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "pipelineDone", Value: true}, {Key: "pipelineAt", Value: at}}}}))
}

func (b *mongoBackend) find(ctx context.Context, f bson.D, opts *options.FindOptionsBuilder) ([]*Message, error) {
	cur, err := b.c.Find(ctx, f, opts)
	if err != nil {
		return nil, err
	}
	var out []*Message
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func historyFilter(q Query, before string) bson.D {
	f := bson.D{{Key: "accountId", Value: q.AccountID}}
	if q.ChatID != "" {
		f = append(f, bson.E{Key: "chatId", Value: q.ChatID})
	}
	if q.From != "" {
		f = append(f, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "from", Value: q.From}},
			bson.D{{Key: "fromPn", Value: q.From}},
			bson.D{{Key: "fromLid", Value: q.From}},
		}})
	}
	if q.Type != "" {
		f = append(f, bson.E{Key: "type", Value: q.Type})
	}
	if q.FromMe != nil {
		f = append(f, bson.E{Key: "fromMe", Value: *q.FromMe})
	}
	ts := bson.D{}
	if !q.Since.IsZero() {
		ts = append(ts, bson.E{Key: "$gte", Value: q.Since.Unix()})
	}
	if !q.Until.IsZero() {
		ts = append(ts, bson.E{Key: "$lt", Value: q.Until.Unix()})
	}
	if len(ts) > 0 {
		f = append(f, bson.E{Key: "timestamp", Value: ts})
	}
	if q.Text != "" {
		f = append(f, bson.E{Key: "text", Value: bson.D{{Key: "$regex", Value: regexp.QuoteMeta(q.Text)}, {Key: "$options", Value: "i"}}})
	}
	if before != "" {
		f = append(f, bson.E{Key: "sortKey", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	return f
}

func (b *mongoBackend) History(ctx context.Context, q Query, before string, limit int) ([]*Message, error) {
	// Pages leave the raw message out (GET …/messages/{id} has it): a page
	// of large messages would otherwise carry each one twice, past what a
	// reply can hold.
	return b.find(ctx, historyFilter(q, before), options.Find().
		SetSort(bson.D{{Key: "sortKey", Value: -1}}).
		SetProjection(bson.D{{Key: "rawMessage", Value: 0}, {Key: "trace", Value: 0}}).
		SetLimit(int64(limit)))
}

func (b *mongoBackend) DeleteAccount(ctx context.Context, accountID string) (int64, error) {
	res, err := b.c.DeleteMany(ctx, bson.D{{Key: "accountId", Value: accountID}})
	if err != nil {
		return 0, err
	}
	if _, err := b.chats.DeleteMany(ctx, bson.D{{Key: "accountId", Value: accountID}}); err != nil {
		return res.DeletedCount, fmt.Errorf("purge chats: %w", err)
	}
	return res.DeletedCount, nil
}

func (b *mongoBackend) Chats(ctx context.Context, accountID, before string, limit int) ([]*Chat, error) {
	f := bson.D{{Key: "accountId", Value: accountID}}
	if before != "" {
		f = append(f, bson.E{Key: "activityKey", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	cur, err := b.chats.Find(ctx, f, options.Find().SetSort(bson.D{{Key: "activityKey", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	out := make([]*Chat, 0, limit)
	if err := cur.All(ctx, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (b *mongoBackend) Chat(ctx context.Context, accountID, chatID string) (*Chat, error) {
	var c Chat
	err := b.chats.FindOne(ctx, bson.D{{Key: "_id", Value: ChatDocID(accountID, chatID)}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("chat %s of %s: %w", chatID, accountID, ErrChatNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read chat %s of %s: %w", chatID, accountID, err)
	}
	return &c, nil
}

// Stored order on MongoDB is (storedAt, _id); a position is the last
// document's "storedAt _id". The index {storedAt: 1, _id: 1} carries it.
func mongoPosition(m *Message) string {
	return m.StoredAt.UTC().Format(time.RFC3339Nano) + " " + m.ID
}

func parsePosition(p string) (time.Time, string, error) {
	ts, id, ok := strings.Cut(p, " ")
	if !ok {
		return time.Time{}, "", fmt.Errorf("position %q: malformed", p)
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("position %q: %w", p, err)
	}
	return t, id, nil
}

func afterPosition(t time.Time, id string) bson.E {
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "storedAt", Value: bson.D{{Key: "$gt", Value: t}}}},
		bson.D{{Key: "storedAt", Value: t}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: id}}}},
	}}
}

func (b *mongoBackend) Unprocessed(ctx context.Context, accountID, after string, limit int) ([]*Message, string, error) {
	filter := bson.D{{Key: "accountId", Value: accountID}, {Key: "pipelineDone", Value: false}}
	if after != "" {
		t, id, err := parsePosition(after)
		if err != nil {
			return nil, "", err
		}
		filter = append(filter, afterPosition(t, id))
	}
	opts := options.Find().SetSort(bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	docs, err := b.find(ctx, filter, opts)
	if err != nil || len(docs) == 0 {
		return nil, "", err
	}
	return docs, mongoPosition(docs[len(docs)-1]), nil
}

func (b *mongoBackend) PipelinePending(ctx context.Context, id string) (bool, error) {
	n, err := b.c.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}, {Key: "pipelineDone", Value: false}})
	return n > 0, err
}

func (b *mongoBackend) StoredAfter(ctx context.Context, after string, limit int) ([]*Message, string, bool, error) {
	at, id, perr := parsePosition(after)
	if perr != nil {
		// Not a position: the id of a stored event.
		var doc struct {
			StoredAt time.Time `bson:"storedAt"`
		}
		err := b.c.FindOne(ctx, bson.D{{Key: "_id", Value: after}}, options.FindOne().SetProjection(bson.D{{Key: "storedAt", Value: 1}})).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, "", false, nil
		}
		if err != nil {
			return nil, "", false, fmt.Errorf("find stored event %s: %w", after, err)
		}
		at, id = doc.StoredAt, after
	}
	filter := bson.D{afterPosition(at, id), {Key: "pipelineDone", Value: bson.D{{Key: "$ne", Value: false}}}}
	docs, err := b.find(ctx, filter, options.Find().SetSort(bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, "", true, err
	}
	next := ""
	if len(docs) == limit && limit > 0 {
		next = mongoPosition(docs[len(docs)-1])
	}
	return docs, next, true, nil
}

func (b *mongoBackend) SetMediaArchive(ctx context.Context, id, mediaID string, a MediaArchive, keep func(cur *Message) bool) (*Message, bool, error) {
	defer b.locks.lock(id)()
	cur, err := b.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if keep(cur) {
		return cur, false, nil
	}
	set := bson.D{{Key: "mediaArchive", Value: a}}
	if a.Status == MediaArchived && mediaID != "" {
		set = append(set, bson.E{Key: "mediaId", Value: mediaID}, bson.E{Key: "mediaUrl", Value: MediaPath(mediaID)})
	}
	// UpdateOne by _id alone: FerretDB v1 answers it from the _id index
	// (findAndModify would scan the collection).
	res, err := b.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return nil, false, err
	}
	if res.MatchedCount == 0 {
		return nil, false, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	return cur, true, nil
}

func (b *mongoBackend) MediaRefs(ctx context.Context) ([]MediaRef, error) {
	cur, err := b.c.Find(ctx, bson.D{{Key: "mediaId", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: ""}}}},
		options.Find().SetProjection(bson.D{{Key: "mediaId", Value: 1}, {Key: "timestamp", Value: 1}, {Key: "mediaArchive.status", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var refs []struct {
		ID        string `bson:"_id"`
		MediaID   string `bson:"mediaId"`
		Timestamp int64  `bson:"timestamp"`
		Archive   *struct {
			Status MediaArchiveStatus `bson:"status"`
		} `bson:"mediaArchive,omitempty"`
	}
	if err := cur.All(ctx, &refs); err != nil {
		return nil, err
	}
	out := make([]MediaRef, len(refs))
	for i, r := range refs {
		out[i] = MediaRef{ID: r.ID, MediaID: r.MediaID, Timestamp: r.Timestamp,
			Archived: r.Archive != nil && r.Archive.Status == MediaArchived}
	}
	return out, nil
}

func (b *mongoBackend) ExpireMedia(ctx context.Context, mediaID string, at time.Time) (int64, error) {
	res, err := b.c.UpdateMany(ctx, bson.D{{Key: "mediaId", Value: mediaID}}, bson.D{
		{Key: "$unset", Value: bson.D{{Key: "mediaId", Value: ""}, {Key: "mediaUrl", Value: ""}}},
		{Key: "$set", Value: bson.D{{Key: "mediaArchive.status", Value: MediaExpired}, {Key: "mediaArchive.at", Value: at}}},
	})
	if err != nil {
		return 0, err
	}
	return res.ModifiedCount, nil
}

func (b *mongoBackend) MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error) {
	f := bson.D{{Key: "accountId", Value: accountID}, {Key: "hasMedia", Value: true}}
	if since > 0 {
		f = append(f, bson.E{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: since}}})
	}
	if len(kinds) > 0 {
		f = append(f, bson.E{Key: "kind", Value: bson.D{{Key: "$in", Value: kinds}}})
	}
	out, err := b.find(ctx, f, options.Find().SetProjection(bson.D{{Key: "rawMessage", Value: 0}, {Key: "trace", Value: 0}}))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Message) int { return strings.Compare(a.SortKey, b.SortKey) })
	return out, nil
}
