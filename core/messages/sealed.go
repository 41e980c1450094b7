package messages

// Encryption at rest (package sealing): a sealedBackend wraps an engine's
// Backend and seals what a message says — its text and caption, the
// quoted text, the edit history, link previews, polls, contacts, location
// names, file names and the raw proto — on the way in, and opens it on the
// way out. Everything the engines filter and sort by (ids, chats, senders,
// types, timestamps, statuses) stays clear, so every listing works as
// before; the one exception is the text search (Query.Text), which cannot
// look into sealed text and is refused while encryption is on
// (ErrSearchOff).
//
// The engine-to-engine copy goes under the wrapper: it moves sealed values
// as they are stored. Reencrypt and ReencryptTraces re-seal them under the
// active key.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/sealing"
)

// ErrSearchOff: the text search (q) is off while encryption at rest is on:
// the stored text is sealed.
var ErrSearchOff = errors.New("text search is off while encryption at rest is on")

// Seal makes the store seal message content with keys (nil: encryption off;
// values sealed earlier still need their keys to be read). Call it before
// the store is used.
func (s *Store) Seal(keys *sealing.Keyring) {
	if inner, ok := s.b.(*sealedBackend); ok {
		s.b = inner.Backend
	}
	s.keys = keys
	s.b = &sealedBackend{Backend: s.b, keys: keys}
}

// Seal makes the records' response bodies sealed with keys.
func (s *Idempotency) Seal(keys *sealing.Keyring) {
	if inner, ok := s.b.(*sealedIdempotency); ok {
		s.b = inner.IdempotencyBackend
	}
	s.b = &sealedIdempotency{IdempotencyBackend: s.b, keys: keys}
}

// engine is the engine's Backend beneath the sealing.
func (s *Store) engine() Backend {
	if sb, ok := s.b.(*sealedBackend); ok {
		return sb.Backend
	}
	return s.b
}

type sealedBackend struct {
	Backend
	keys *sealing.Keyring
}

// mapContent returns a copy of m whose content strings went through str
// and raw bytes through raw; m is not changed. The copy shares nothing
// that was mapped with m.
func mapContent(m *event.Message, str func(string) (string, error), raw func([]byte) ([]byte, error)) (event.Message, error) {
	out := *m
	var errs []error
	s := func(p *string) {
		v, err := str(*p)
		errs = append(errs, err)
		*p = v
	}
	s(&out.Text)
	if m.Media != nil {
		md := *m.Media
		s(&md.Caption)
		s(&md.Filename)
		out.Media = &md
	}
	if m.Quoted != nil {
		q := *m.Quoted
		s(&q.Text)
		out.Quoted = &q
	}
	if m.Location != nil {
		l := *m.Location
		s(&l.Name)
		s(&l.Address)
		out.Location = &l
	}
	if m.Contacts != nil {
		out.Contacts = make([]event.Contact, len(m.Contacts))
		for i, c := range m.Contacts {
			s(&c.DisplayName)
			s(&c.VCard)
			out.Contacts[i] = c
		}
	}
	if m.Poll != nil {
		p := *m.Poll
		s(&p.Name)
		if m.Poll.Options != nil {
			p.Options = make([]event.PollOption, len(m.Poll.Options))
			for i, o := range m.Poll.Options {
				s(&o.Name)
				p.Options[i] = o
			}
		}
		out.Poll = &p
	}
	if m.LinkPreview != nil {
		lp := *m.LinkPreview
		s(&lp.URL)
		s(&lp.Title)
		s(&lp.Description)
		out.LinkPreview = &lp
	}
	if len(m.Raw) > 0 {
		v, err := raw(m.Raw)
		errs = append(errs, err)
		out.Raw = v
	}
	return out, errors.Join(errs...)
}

// mapMessage is mapContent over a stored message: its content, its raw
// proto, its edit history and an edit's payload.
func mapMessage(m *Message, str func(string) (string, error), raw func([]byte) ([]byte, error)) (*Message, error) {
	if m == nil {
		return nil, nil
	}
	out := *m
	var errs []error
	c, err := mapContent(&m.Message, str, raw)
	errs = append(errs, err)
	out.Message = c
	if len(m.RawMessage) > 0 {
		out.RawMessage, err = raw(m.RawMessage)
		errs = append(errs, err)
	}
	if m.EditHistory != nil {
		out.EditHistory = make([]PreviousText, len(m.EditHistory))
		for i, h := range m.EditHistory {
			h.Text, err = str(h.Text)
			errs = append(errs, err)
			out.EditHistory[i] = h
		}
	}
	if m.Edit != nil {
		e := *m.Edit
		e.Text, err = str(e.Text)
		errs = append(errs, err)
		if e.Message != nil {
			em, err := mapContent(e.Message, str, raw)
			errs = append(errs, err)
			e.Message = &em
		}
		out.Edit = &e
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("message %s: %w", m.ID, err)
	}
	return &out, nil
}

func (b *sealedBackend) sealBytes(p []byte) ([]byte, error) { return b.keys.Seal(p, nil) }
func (b *sealedBackend) openBytes(p []byte) ([]byte, error) { return b.keys.Open(p, nil) }

func (b *sealedBackend) seal(m *Message) (*Message, error) {
	return mapMessage(m, b.keys.SealString, b.sealBytes)
}

func (b *sealedBackend) open(m *Message) (*Message, error) {
	return mapMessage(m, b.keys.OpenString, b.openBytes)
}

func (b *sealedBackend) openAll(ms []*Message, err error) ([]*Message, error) {
	if err != nil {
		return nil, err
	}
	for i, m := range ms {
		if ms[i], err = b.open(m); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

func (b *sealedBackend) openChat(c *Chat) (*Chat, error) {
	if c == nil || c.LastMessage == nil {
		return c, nil
	}
	out := *c
	last := *c.LastMessage
	var err error
	if last.Text, err = b.keys.OpenString(last.Text); err != nil {
		return nil, fmt.Errorf("chat %s: %w", c.ID, err)
	}
	out.LastMessage = &last
	return &out, nil
}

func (b *sealedBackend) Insert(ctx context.Context, m *Message, chat *chatUpdate) error {
	sm, err := b.seal(m)
	if err != nil {
		return err
	}
	if chat != nil {
		c := *chat
		if c.Last.Text, err = b.keys.SealString(c.Last.Text); err != nil {
			return err
		}
		chat = &c
	}
	return b.Backend.Insert(ctx, sm, chat)
}

func (b *sealedBackend) CompletePending(ctx context.Context, m *Message, merge func(cur, m *Message) bool) (bool, error) {
	sm, err := b.seal(m)
	if err != nil {
		return false, err
	}
	// merge reads and copies only fields that are not sealed (order,
	// status, media links, whether the raw proto is there).
	return b.Backend.CompletePending(ctx, sm, merge)
}

func (b *sealedBackend) Get(ctx context.Context, id string) (*Message, error) {
	m, err := b.Backend.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return b.open(m)
}

func (b *sealedBackend) Edit(ctx context.Context, id, editID, text string, at time.Time) (bool, error) {
	st, err := b.keys.SealString(text)
	if err != nil {
		return false, err
	}
	return b.Backend.Edit(ctx, id, editID, st, at)
}

func (b *sealedBackend) History(ctx context.Context, q Query, before string, limit int) ([]*Message, error) {
	return b.openAll(b.Backend.History(ctx, q, before, limit))
}

func (b *sealedBackend) Chats(ctx context.Context, accountID, before string, limit int) ([]*Chat, error) {
	cs, err := b.Backend.Chats(ctx, accountID, before, limit)
	if err != nil {
		return nil, err
	}
	for i, c := range cs {
		if cs[i], err = b.openChat(c); err != nil {
			return nil, err
		}
	}
	return cs, nil
}

func (b *sealedBackend) Chat(ctx context.Context, accountID, chatID string) (*Chat, error) {
	c, err := b.Backend.Chat(ctx, accountID, chatID)
	if err != nil {
		return nil, err
	}
	return b.openChat(c)
}

func (b *sealedBackend) Unprocessed(ctx context.Context, accountID, after string, limit int) ([]*Message, string, error) {
	docs, next, err := b.Backend.Unprocessed(ctx, accountID, after, limit)
	docs, err = b.openAll(docs, err)
	return docs, next, err
}

func (b *sealedBackend) StoredAfter(ctx context.Context, after string, limit int) ([]*Message, string, bool, error) {
	docs, next, found, err := b.Backend.StoredAfter(ctx, after, limit)
	docs, err = b.openAll(docs, err)
	return docs, next, found, err
}

func (b *sealedBackend) SetMediaArchive(ctx context.Context, id, mediaID string, a MediaArchive, keep func(cur *Message) bool) (*Message, bool, error) {
	cur, changed, err := b.Backend.SetMediaArchive(ctx, id, mediaID, a, keep)
	if err != nil {
		return nil, false, err
	}
	cur, err = b.open(cur)
	return cur, changed, err
}

func (b *sealedBackend) MediaMessages(ctx context.Context, accountID string, since int64, kinds []string) ([]*Message, error) {
	return b.openAll(b.Backend.MediaMessages(ctx, accountID, since, kinds))
}

// sealedIdempotency seals the stored first answers: a send's answer
// carries the message.
type sealedIdempotency struct {
	IdempotencyBackend
	keys *sealing.Keyring
}

func (b *sealedIdempotency) Claim(ctx context.Context, rec *IdempotencyRecord, dead func(old *IdempotencyRecord) bool) (*IdempotencyRecord, error) {
	old, err := b.IdempotencyBackend.Claim(ctx, rec, dead)
	if err != nil || old == nil || len(old.Body) == 0 {
		return old, err
	}
	o := *old
	if o.Body, err = b.keys.Open(old.Body, nil); err != nil {
		return nil, fmt.Errorf("idempotency record %s: %w", old.ID, err)
	}
	return &o, nil
}

func (b *sealedIdempotency) Complete(ctx context.Context, id string, status int, contentType, location string, body []byte) error {
	if len(body) > 0 {
		var err error
		if body, err = b.keys.Seal(body, nil); err != nil {
			return err
		}
	}
	return b.IdempotencyBackend.Complete(ctx, id, status, contentType, location, body)
}

// Reencrypt rewrites every message and chat whose sealed values are not
// under the active key (or are plaintext, written before encryption was
// turned on) so that they are, and reports how many it rewrote. It is
// meant for a store no daemon is writing to: a rewrite replaces the whole
// stored message (but not its pipeline trace: see ReencryptTraces).
func (s *Store) Reencrypt(ctx context.Context, batch int) (msgs, chats int64, err error) {
	sb, ok := s.b.(*sealedBackend)
	if !ok || !s.keys.Enabled() {
		return 0, 0, errors.New("reencrypt: encryption is off (configure a key)")
	}
	inner := sb.Backend
	// ImportMessages replaces a MongoDB document whole, which would drop
	// the message's trace (not a Message field): there the rewrite sets
	// the fields instead. SQLite's upsert leaves the trace columns be.
	rewrite := inner.ImportMessages
	if mb, ok := inner.(*mongoBackend); ok {
		rewrite = mb.rewriteMessages
	}
	err = inner.ExportMessages(ctx, batch, func(ms []*Message) error {
		var out []*Message
		for _, m := range ms {
			if !s.staleMessage(m) {
				continue
			}
			p, err := sb.open(m)
			if err != nil {
				return err
			}
			if m, err = sb.seal(p); err != nil {
				return err
			}
			out = append(out, m)
		}
		if len(out) == 0 {
			return nil
		}
		msgs += int64(len(out))
		return rewrite(ctx, out)
	})
	if err != nil {
		return msgs, chats, fmt.Errorf("reencrypt messages: %w", err)
	}
	err = inner.ExportChats(ctx, batch, func(cs []*Chat) error {
		var out []*Chat
		for _, c := range cs {
			if c.LastMessage == nil || !s.keys.StaleString(c.LastMessage.Text) {
				continue
			}
			p, err := sb.openChat(c)
			if err != nil {
				return err
			}
			if p.LastMessage.Text, err = s.keys.SealString(p.LastMessage.Text); err != nil {
				return err
			}
			out = append(out, p)
		}
		if len(out) == 0 {
			return nil
		}
		chats += int64(len(out))
		return inner.ImportChats(ctx, out)
	})
	if err != nil {
		return msgs, chats, fmt.Errorf("reencrypt chats: %w", err)
	}
	return msgs, chats, nil
}

// ReencryptTraces re-seals under the active key every stored pipeline trace
// that is not (plaintext, or under an older key) and reports how many it
// rewrote; each keeps its time. Like Reencrypt, it is meant for a store no
// daemon is writing to.
func (s *Store) ReencryptTraces(ctx context.Context, batch int) (int64, error) {
	if _, ok := s.b.(*sealedBackend); !ok || !s.keys.Enabled() {
		return 0, errors.New("reencrypt: encryption is off (configure a key)")
	}
	inner := s.engine()
	var n int64
	err := inner.ExportTraces(ctx, batch, func(ts []*TraceRecord) error {
		var out []*TraceRecord
		for _, t := range ts {
			if !s.keys.StaleString(t.Trace) {
				continue
			}
			p, err := s.keys.OpenString(t.Trace)
			if err != nil {
				return fmt.Errorf("trace of %s: %w", t.ID, err)
			}
			c := *t
			if c.Trace, err = s.keys.SealString(p); err != nil {
				return fmt.Errorf("trace of %s: %w", t.ID, err)
			}
			out = append(out, &c)
		}
		if len(out) == 0 {
			return nil
		}
		set, err := inner.ImportTraces(ctx, out)
		n += set
		return err
	})
	if err != nil {
		return n, fmt.Errorf("reencrypt traces: %w", err)
	}
	return n, nil
}

// staleMessage: some sealed value of m is not under the active key.
func (s *Store) staleMessage(m *Message) bool {
	stale := false
	str := func(v string) (string, error) {
		stale = stale || s.keys.StaleString(v)
		return v, nil
	}
	raw := func(v []byte) ([]byte, error) {
		stale = stale || s.keys.Stale(v)
		return v, nil
	}
	_, _ = mapMessage(m, str, raw)
	return stale
}

// Reencrypt re-seals the stored answers under the active key.
func (s *Idempotency) Reencrypt(ctx context.Context, batch int) (int64, error) {
	sb, ok := s.b.(*sealedIdempotency)
	if !ok || !sb.keys.Enabled() {
		return 0, errors.New("reencrypt: encryption is off (configure a key)")
	}
	var n int64
	err := sb.IdempotencyBackend.Export(ctx, batch, func(recs []*IdempotencyRecord) error {
		var out []*IdempotencyRecord
		for _, r := range recs {
			if len(r.Body) == 0 || !sb.keys.Stale(r.Body) {
				continue
			}
			p, err := sb.keys.Open(r.Body, nil)
			if err != nil {
				return fmt.Errorf("idempotency record %s: %w", r.ID, err)
			}
			c := *r
			if c.Body, err = sb.keys.Seal(p, nil); err != nil {
				return err
			}
			out = append(out, &c)
		}
		if len(out) == 0 {
			return nil
		}
		n += int64(len(out))
		return sb.IdempotencyBackend.Import(ctx, out)
	})
	if err != nil {
		return n, fmt.Errorf("reencrypt idempotency records: %w", err)
	}
	return n, nil
}

// EventSealer seals what an event says — its message's content and an
// edit's new content, as for stored messages — for stores that keep whole
// events (the outbox's job payloads).
type EventSealer struct{ keys *sealing.Keyring }

// NewEventSealer returns the sealer of keys (nil: encryption off).
func NewEventSealer(keys *sealing.Keyring) *EventSealer { return &EventSealer{keys: keys} }

func (s *EventSealer) sealBytes(p []byte) ([]byte, error) { return s.keys.Seal(p, nil) }
func (s *EventSealer) openBytes(p []byte) ([]byte, error) { return s.keys.Open(p, nil) }

// mapEvent is a copy of ev with its content passed through str and raw.
func mapEvent(ev *event.Event, str func(string) (string, error), raw func([]byte) ([]byte, error)) (*event.Event, error) {
	out := *ev
	if ev.Message != nil {
		m, err := mapContent(ev.Message, str, raw)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		out.Message = &m
	}
	if ev.Edit != nil {
		e := *ev.Edit
		var err error
		if e.Text, err = str(e.Text); err != nil {
			return nil, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if e.Message != nil {
			m, err := mapContent(e.Message, str, raw)
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", ev.ID, err)
			}
			e.Message = &m
		}
		out.Edit = &e
	}
	return &out, nil
}

// SealEvent implements outbox.PayloadSealer.
func (s *EventSealer) SealEvent(ev *event.Event) (*event.Event, error) {
	return mapEvent(ev, s.keys.SealString, s.sealBytes)
}

// OpenEvent implements outbox.PayloadSealer.
func (s *EventSealer) OpenEvent(ev *event.Event) (*event.Event, error) {
	return mapEvent(ev, s.keys.OpenString, s.openBytes)
}

// Reseal returns ev sealed under the active key and true when some of its
// content was not (plaintext, or an older key); else ev and false.
func (s *EventSealer) Reseal(ev *event.Event) (*event.Event, bool, error) {
	stale := false
	_, _ = mapEvent(ev, func(v string) (string, error) {
		stale = stale || s.keys.StaleString(v)
		return v, nil
	}, func(v []byte) ([]byte, error) {
		stale = stale || s.keys.Stale(v)
		return v, nil
	})
	if !stale {
		return ev, false, nil
	}
	p, err := s.OpenEvent(ev)
	if err != nil {
		return nil, false, err
	}
	out, err := s.SealEvent(p)
	return out, err == nil, err
}
