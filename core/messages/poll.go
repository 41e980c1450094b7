package messages

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/event"
)

// PollTally is a poll's current result, kept on the poll's stored message
// and updated in the same write that stores each vote (RecordVote). A
// voter's later vote replaces their earlier one; a vote with no options
// (withdrawn) removes theirs.
type PollTally struct {
	// Options are the poll's options in its order, each with its votes.
	Options []PollOptionTally `bson:"options" json:"options"`
	// Voters counts the voters whose vote counts now.
	Voters int `bson:"voters" json:"voters"`
	// Ballots are each voter's latest vote, withdrawals included: a vote
	// older than the ballot (redelivered late) changes nothing.
	Ballots []PollBallot `bson:"ballots" json:"-"`
}

// PollOptionTally is one option's share of a poll's votes.
type PollOptionTally struct {
	// Name is the option's text. It is not stored with the tally (the
	// poll's options hold it, sealed when encryption at rest is on); reads
	// fill it in.
	Name   string   `bson:"-" json:"name"`
	Hash   string   `bson:"hash" json:"hash"`
	Votes  int      `bson:"votes" json:"votes"`
	Voters []string `bson:"voters" json:"voters"`
}

// PollBallot is one voter's latest vote on a poll.
type PollBallot struct {
	Voter string `bson:"voter"`
	// Options are the hashes of the chosen options; none: withdrawn.
	Options []string `bson:"options"`
	// VoteID is the id of the vote message; AtMs when it was cast (the
	// voter's clock, else the message's timestamp). (AtMs, VoteID) orders
	// a voter's votes.
	VoteID string `bson:"voteId"`
	AtMs   int64  `bson:"atMs"`
}

// voteOf is the ballot a decrypted poll_vote message casts on its poll,
// and the poll's id; ok is false for anything else.
func voteOf(m *event.Message) (pollID string, b PollBallot, ok bool) {
	v := m.PollVote
	if m.Type != event.TypePollVote || v == nil || !v.Decrypted || v.PollMessageID == "" || m.From == "" {
		return "", PollBallot{}, false
	}
	at := v.SenderTimestampMs
	if at == 0 {
		at = m.Timestamp * 1000
	}
	return v.PollMessageID, PollBallot{Voter: m.From, Options: slices.Clone(v.SelectedOptions), VoteID: m.MessageID, AtMs: at}, true
}

// applyVote puts b into the tally of the poll cur; false when cur is no
// poll or b is not newer than the voter's ballot (the same vote again, or
// an older one).
func applyVote(cur *Message, b PollBallot) bool {
	if cur.Type != event.TypePoll || cur.Poll == nil {
		return false
	}
	t := cur.PollTally
	if t == nil {
		t = &PollTally{}
	}
	i := slices.IndexFunc(t.Ballots, func(x PollBallot) bool { return x.Voter == b.Voter })
	if i >= 0 {
		old := t.Ballots[i]
		if cmp.Or(cmp.Compare(b.AtMs, old.AtMs), cmp.Compare(b.VoteID, old.VoteID)) <= 0 {
			return false
		}
		t.Ballots[i] = b
	} else {
		t.Ballots = append(t.Ballots, b)
	}
	countVotes(t, cur.Poll)
	cur.PollTally = t
	cur.Rev++
	return true
}

// countVotes derives the options' counts from the ballots. Hashes that are
// none of the poll's options are not counted.
func countVotes(t *PollTally, p *event.Poll) {
	t.Options = make([]PollOptionTally, len(p.Options))
	at := make(map[string]int, len(p.Options))
	for i, o := range p.Options {
		t.Options[i] = PollOptionTally{Hash: o.Hash, Voters: []string{}}
		at[o.Hash] = i
	}
	t.Voters = 0
	for _, b := range t.Ballots {
		counted := false
		for _, h := range slices.Compact(slices.Sorted(slices.Values(b.Options))) {
			if i, ok := at[h]; ok {
				t.Options[i].Votes++
				t.Options[i].Voters = append(t.Options[i].Voters, b.Voter)
				counted = true
			}
		}
		if counted {
			t.Voters++
		}
	}
}

// withPollNames fills in the names of a read poll's tally from its
// options (open, when sealed) and gives an unvoted poll its empty tally,
// so that every poll shows its options with their counts.
func withPollNames(m *Message) {
	if m == nil || m.Type != event.TypePoll || m.Poll == nil {
		return
	}
	if m.PollTally == nil {
		m.PollTally = &PollTally{}
		countVotes(m.PollTally, m.Poll)
	}
	names := make(map[string]string, len(m.Poll.Options))
	for _, o := range m.Poll.Options {
		names[o.Hash] = o.Name
	}
	for i := range m.PollTally.Options {
		o := &m.PollTally.Options[i]
		o.Name = names[o.Hash]
		if o.Voters == nil {
			o.Voters = []string{}
		}
	}
}

// recordVote stores a decrypted vote and applies it to its poll's tally in
// one write (Backend.InsertVote); a redelivered vote is stored once and
// counted once.
func (s *Store) recordVote(ctx context.Context, doc *Message, chat *chatUpdate, pollID string, b PollBallot) (bool, error) {
	inserted, _, err := s.b.InsertVote(ctx, doc, chat, DocID(doc.AccountID, pollID), b)
	if err != nil {
		return false, fmt.Errorf("store poll vote %s: %w", doc.ID, err)
	}
	return inserted, nil
}

// InsertVote on MongoDB: the vote, then its poll's tally by a conditional
// update on the poll's rev (no multi-document transaction). A vote found
// stored already is applied again, so a crash between the two writes
// cannot lose it when WhatsApp redelivers; applyVote ignores a ballot it
// has.
func (b *mongoBackend) InsertVote(ctx context.Context, m *Message, chat *chatUpdate, pollID string, ballot PollBallot) (inserted, applied bool, err error) {
	switch err := b.Insert(ctx, m, chat); {
	case err == nil:
		inserted = true
	case errors.Is(err, ErrExists):
	default:
		return false, false, err
	}
	defer b.locks.lock(pollID)()
	for range maxEditAttempts {
		cur, err := b.Get(ctx, pollID)
		if errors.Is(err, ErrNotFound) {
			return inserted, false, nil
		}
		if err != nil {
			return inserted, false, err
		}
		rev := cur.Rev
		if !applyVote(cur, ballot) {
			return inserted, false, nil
		}
		res, err := b.c.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: pollID}, {Key: "rev", Value: rev}},
			bson.D{
				{Key: "$set", Value: bson.D{{Key: "pollTally", Value: cur.PollTally}}},
				{Key: "$inc", Value: bson.D{{Key: "rev", Value: 1}}},
			})
		if err != nil {
			return inserted, false, err
		}
		if res.MatchedCount > 0 {
			return inserted, true, nil
		}
		// Another vote on the poll won the race; read again.
	}
	return inserted, false, fmt.Errorf("poll %s: still contended after %d attempts", pollID, maxEditAttempts)
}

// InsertVote seals the vote message; the tally holds no sealed content
// (option hashes and voters' JIDs, which stay clear like every id).
func (b *sealedBackend) InsertVote(ctx context.Context, m *Message, chat *chatUpdate, pollID string, ballot PollBallot) (bool, bool, error) {
	sm, err := b.seal(m)
	if err != nil {
		return false, false, err
	}
	if chat != nil {
		c := *chat
		if c.Last.Text, err = b.keys.SealString(c.Last.Text); err != nil {
			return false, false, err
		}
		chat = &c
	}
	return b.Backend.InsertVote(ctx, sm, chat, pollID, ballot)
}
