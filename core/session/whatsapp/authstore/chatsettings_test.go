package authstore

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"

	"github.com/wildcathub/wildcat/core/store/storetest"
)

func TestChatSettings(t *testing.T) { storetest.Each(t, testChatSettings) }

func testChatSettings(t *testing.T, e storetest.Engine) {
	s, ctx := newTestStore(t, e)
	chat := types.NewJID("123-456", types.GroupServer)

	got, err := s.GetChatSettings(ctx, chat)
	must(t, err)
	if got != (types.LocalChatSettings{}) {
		t.Fatalf("defaults = %+v, want all zero and not found", got)
	}

	until := time.Unix(1900000000, 0)
	steps := []struct {
		name string
		do   func() error
		want types.LocalChatSettings
	}{
		{"pin", func() error { return s.PutPinned(ctx, chat, true) }, types.LocalChatSettings{Found: true, Pinned: true}},
		{"mute until", func() error { return s.PutMutedUntil(ctx, chat, until.Add(300*time.Millisecond)) }, types.LocalChatSettings{Found: true, Pinned: true, MutedUntil: until}},
		{"archive", func() error { return s.PutArchived(ctx, chat, true) }, types.LocalChatSettings{Found: true, Pinned: true, Archived: true, MutedUntil: until}},
		{"mute forever", func() error { return s.PutMutedUntil(ctx, chat, store.MutedForever) }, types.LocalChatSettings{Found: true, Pinned: true, Archived: true, MutedUntil: store.MutedForever}},
		{"unmute", func() error { return s.PutMutedUntil(ctx, chat, time.Time{}) }, types.LocalChatSettings{Found: true, Pinned: true, Archived: true}},
		{"unpin", func() error { return s.PutPinned(ctx, chat, false) }, types.LocalChatSettings{Found: true, Archived: true}},
		{"unarchive", func() error { return s.PutArchived(ctx, chat, false) }, types.LocalChatSettings{Found: true}},
	}
	for _, st := range steps {
		must(t, st.do())
		got, err := s.GetChatSettings(ctx, chat)
		must(t, err)
		if got.Found != st.want.Found || got.Pinned != st.want.Pinned || got.Archived != st.want.Archived || !got.MutedUntil.Equal(st.want.MutedUntil) {
			t.Errorf("after %s: %+v, want %+v", st.name, got, st.want)
		}
	}
	if other, _ := s.GetChatSettings(ctx, pnJID("1")); other.Found {
		t.Fatal("settings leaked to another chat")
	}
}
