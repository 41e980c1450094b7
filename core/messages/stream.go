package messages

import (
	"context"
	"fmt"

	"github.com/wildcathub/wildcat/core/event"
)

// EventsAfter lists, for the event stream's resume, the stored message
// events that come after the one with id after, in storing order, at most limit of them, with the tags and annotations the
// pipeline gave them. Events the pipeline has not finished are left out:
// the live stream delivers them once it has. found is false when after is
// not a stored message event. next continues the listing (pass it as
// after); it is "" when there is nothing more.
func (s *Store) EventsAfter(ctx context.Context, after string, limit int) (evs []*event.Event, next string, found bool, err error) {
	docs, next, found, err := s.b.StoredAfter(ctx, after, limit)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("list stored events after %s: %w", after, err)
		}
		return nil, "", found, err
	}
	for _, d := range docs {
		ev := d.Event()
		ev.Tags, ev.Annotations = d.Tags, d.Annotations
		evs = append(evs, ev)
	}
	return evs, next, true, nil
}
