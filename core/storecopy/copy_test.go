package storecopy_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/storecopy"
)

// memStore is a kind held in a slice: enough to test the copy's own logic;
// the engines' exporters and importers are tested with the engines.
type memStore struct{ items []int }

func (m *memStore) Count(context.Context) (int64, error) { return int64(len(m.items)), nil }

func (m *memStore) Export(_ context.Context, batch int, fn func([]int) error) error {
	for i := 0; i < len(m.items); i += batch {
		if err := fn(m.items[i:min(i+batch, len(m.items))]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Import(_ context.Context, items []int) error {
	m.items = append(m.items, items...)
	return nil
}

func TestRunCopiesEveryKindAndRefusesAFullTarget(t *testing.T) {
	src := &memStore{}
	for i := range 1234 {
		src.items = append(src.items, i)
	}
	dst := &memStore{}
	kinds := []storecopy.Kind{storecopy.Of[int]("things", src, dst)}
	var out bytes.Buffer
	res, err := storecopy.Run(context.Background(), kinds, false, storecopy.NewLines(&out, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(dst.items) != 1234 || dst.items[1233] != 1233 {
		t.Fatalf("copied %d items", len(dst.items))
	}
	if r := res.Kinds[0]; r.Name != "things" || r.Source != 1234 || r.Copied != 1234 {
		t.Fatalf("result %+v", r)
	}
	if !strings.Contains(out.String(), "things: copying 1234") || !strings.Contains(out.String(), "things: 1234 copied") {
		t.Fatalf("progress lines:\n%s", out.String())
	}

	// A second copy into the now full target is refused, and changes nothing.
	_, err = storecopy.Run(context.Background(), kinds, false, storecopy.NewLines(&out, time.Hour))
	if !errors.Is(err, storecopy.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "1234 things") {
		t.Fatalf("copy into a full target: %v", err)
	}
	if len(dst.items) != 1234 {
		t.Fatalf("refused copy wrote: %d items", len(dst.items))
	}
	// Forced, it copies into it.
	if _, err := storecopy.Run(context.Background(), kinds, true, storecopy.NewLines(&out, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(dst.items) != 2468 {
		t.Fatalf("forced copy: %d items", len(dst.items))
	}
}
