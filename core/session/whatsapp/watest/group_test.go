package watest_test

import (
	"errors"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wildcathub/wildcat/core/session/whatsapp/watest"
)

// TestGroupRoundTrip: an unmodified whatsmeow client creates a group,
// decrypts sender-key messages from two member contacts and sends one that
// both contacts decrypt; a poll it sends is voted on and the vote opens
// with whatsmeow's DecryptPollVote.
func TestGroupRoundTrip(t *testing.T) {
	t.Parallel()
	srv := watest.New(t)
	c, acct := pairNew(t, srv)
	ctx := ctxFor(t)
	alice, bob := srv.Contact("15550002001"), srv.Contact("15550002002")

	info, err := c.CreateGroup(ctx, whatsmeow.ReqCreateGroup{Name: "Team", Participants: []types.JID{alice.JID(), bob.JID()}})
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	if info.Name != "Team" || len(info.Participants) != 3 {
		t.Fatalf("created %+v", info)
	}
	joined := await[*events.JoinedGroup](t, c, nil)
	if joined.JID != info.JID {
		t.Fatalf("joined %s, created %s", joined.JID, info.JID)
	}

	for _, sender := range []*watest.Contact{alice, bob} {
		id, err := sender.SendGroupText(ctx, info.JID, "hi from "+sender.JID().User)
		if err != nil {
			t.Fatal(err)
		}
		msg := await(t, c, func(m *events.Message) bool { return m.Info.ID == id && m.Message.GetConversation() != "" })
		if msg.Info.Chat != info.JID || msg.Info.Sender != sender.JID() || msg.Message.GetConversation() != "hi from "+sender.JID().User {
			t.Fatalf("client got %+v: %v", msg.Info, msg.Message)
		}
	}

	resp, err := c.SendMessage(ctx, info.JID, &waE2E.Message{Conversation: new("hello team")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []*watest.Contact{alice, bob} {
		got, err := ct.NextMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != resp.ID || got.Chat != info.JID || got.Message.GetConversation() != "hello team" {
			t.Fatalf("%s got %+v", ct.JID(), got)
		}
	}

	// Group IQ errors as whatsmeow names them.
	if _, err := c.GetGroupInfo(ctx, types.NewJID("120363999999999999", types.GroupServer)); !errors.Is(err, whatsmeow.ErrGroupNotFound) {
		t.Fatalf("unknown group: %v", err)
	}

	poll := c.BuildPollCreation("Lunch?", []string{"pizza", "salad"}, 1)
	pollResp, err := c.SendMessage(ctx, info.JID, poll)
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.NextMessage(ctx); err != nil {
		t.Fatal(err)
	}
	if got.ID != pollResp.ID {
		t.Fatalf("alice got %s, want the poll %s", got.ID, pollResp.ID)
	}
	voteID, err := alice.VotePoll(ctx, got, "salad")
	if err != nil {
		t.Fatal(err)
	}
	vote := await(t, c, func(m *events.Message) bool { return m.Info.ID == voteID && m.Message.GetPollUpdateMessage() != nil })
	dec, err := c.DecryptPollVote(ctx, vote)
	if err != nil {
		t.Fatalf("decrypt vote: %v", err)
	}
	want := whatsmeow.HashPollOptions([]string{"salad"})
	if len(dec.SelectedOptions) != 1 || string(dec.SelectedOptions[0]) != string(want[0]) {
		t.Fatalf("vote selected %x, want %x", dec.SelectedOptions, want)
	}
	_ = acct
}
