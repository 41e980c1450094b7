package messages

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/event"
)

// EventsAfter lists, for the event stream's resume, the stored message
// events that come after the one with id after, in storing order (storedAt,
// then _id), at most limit of them, with the tags and annotations the
// pipeline gave them. Events the pipeline has not finished are left out:
// the live stream delivers them once it has. found is false when after is
// not a stored message event. next continues the listing (pass it as
// after); it is "" when there is nothing more.
func (s *Store) EventsAfter(ctx context.Context, after string, limit int) (evs []*event.Event, next string, found bool, err error) {
	var at time.Time
	id := after
	if t, pid, perr := parsePosition(after); perr == nil {
		at, id = t, pid // a position returned by an earlier page
	} else {
		var doc struct {
			StoredAt time.Time `bson:"storedAt"`
		}
		err := s.c.FindOne(ctx, bson.D{{Key: "_id", Value: after}}, options.FindOne().SetProjection(bson.D{{Key: "storedAt", Value: 1}})).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, "", false, nil
		}
		if err != nil {
			return nil, "", false, fmt.Errorf("find stored event %s: %w", after, err)
		}
		at = doc.StoredAt
	}
	filter := bson.D{
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "storedAt", Value: bson.D{{Key: "$gt", Value: at}}}},
			bson.D{{Key: "storedAt", Value: at}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: id}}}},
		}},
		{Key: "pipelineDone", Value: bson.D{{Key: "$ne", Value: false}}},
	}
	opts := options.Find().SetSort(bson.D{{Key: "storedAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit))
	cur, err := s.c.Find(ctx, filter, opts)
	if err != nil {
		return nil, "", true, fmt.Errorf("list stored events after %s: %w", after, err)
	}
	var docs []*Message
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", true, fmt.Errorf("list stored events after %s: %w", after, err)
	}
	for _, d := range docs {
		ev := d.Event()
		ev.Tags, ev.Annotations = d.Tags, d.Annotations
		evs = append(evs, ev)
	}
	if len(docs) == limit {
		last := docs[len(docs)-1]
		next = last.StoredAt.UTC().Format(time.RFC3339Nano) + " " + last.ID
	}
	return evs, next, true, nil
}
