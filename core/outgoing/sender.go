// Package outgoing sends messages on behalf of the daemon: each REST send is
// stored as pending first, then sent by a bounded pool of workers through
// the account's session, and its status follows — sent (the driver's
// rendering completes the stored message) or failed with the reason. Every
// send, rule and plugin ones too (Send), first books its slot with the
// Pacer; one that must wait is stored as pending and goes at its slot.
package outgoing

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wildcathub/wildcat/core/clock"
	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/session"
)

// ErrBusy: the queue is full; try again shortly (503).
var ErrBusy = errors.New("send queue is full")

// ErrClosed: the daemon is stopping.
var ErrClosed = errors.New("sender is stopped")

// Sessions sends through an account's session; the session Manager
// implements it.
type Sessions interface {
	Send(ctx context.Context, accountID string, req *session.SendRequest) (*session.SendResult, error)
}

// Store keeps the pending message and its failure.
type Store interface {
	StorePending(ctx context.Context, m *messages.Message) error
	MarkFailed(ctx context.Context, accountID, messageID, reason string) (bool, error)
}

// Pacer books an account's send slots; the throttle Pacer implements it.
type Pacer interface {
	// Reserve returns when the account's next send may go (now or later),
	// or why it may not (the daily cap).
	Reserve(ctx context.Context, accountID string) (time.Time, error)
	// Queued counts the sends waiting for their slot.
	Queued(accountID string, delta int)
}

// Options configures a Sender.
type Options struct {
	Sessions Sessions
	Store    Store
	Logger   *slog.Logger
	// Pacer paces the sends; nil sends everything at once.
	Pacer Pacer
	// Clock times the paced sends; nil is the system clock.
	Clock clock.Clock
	// Workers send concurrently; QueueSize more may wait.
	Workers, QueueSize int
	// SendTimeout bounds one send (upload included); 0 means 2 minutes.
	SendTimeout time.Duration
}

// Request is one message to send.
type Request struct {
	AccountID string
	// From is the account's own JID, recorded on the pending message.
	From string
	// Send is what the session sends; its ID is chosen here when empty.
	Send *session.SendRequest
	// MediaID and MediaURL name the stored copy of the media, if any.
	MediaID, MediaURL string
	// MediaSHA256 and MediaSize describe it.
	MediaSHA256 string
}

type job struct {
	accountID string
	req       *session.SendRequest
}

// waiting is a job whose timer has not fired.
type waiting struct {
	j        job
	storedAt time.Time
	timer    clock.Timer
}

// Sender runs the workers.
type Sender struct {
	o     Options
	log   *slog.Logger
	slots chan struct{} // one per queued or running job: the bound
	jobs  chan job

	mu     sync.RWMutex
	closed bool
	waitMu sync.Mutex
	// waiting are the sends whose slot has not come, by message id.
	waiting map[string]*waiting

	ctx    context.Context // cancelled when Close runs out of time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts the workers.
func New(o Options) *Sender {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Workers, o.QueueSize = max(o.Workers, 1), max(o.QueueSize, 1)
	if o.SendTimeout <= 0 {
		o.SendTimeout = 2 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		o: o, log: o.Logger,
		slots: make(chan struct{}, o.Workers+o.QueueSize),
		jobs:  make(chan job, o.Workers+o.QueueSize),
		ctx:   ctx, cancel: cancel,
		waiting: map[string]*waiting{},
	}
	for range o.Workers {
		s.wg.Go(s.work)
	}
	return s
}

// NewMessageID makes an id shaped like WhatsApp web's own (3EB0 and 18
// upper-case hex digits). Choosing it before sending lets the stored
// message keep one _id from pending to sent.
func NewMessageID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// MaxTextChars is the longest text, caption or edit a send may carry, in
// characters: what the WhatsApp apps accept in one message (65,536). The
// Business Cloud API's lower limits (4,096 for text, 1,024 for captions) do
// not apply to linked-device sessions; longer texts are refused before
// anything is stored, on every path that sends.
const MaxTextChars = 65536

// ErrTooLong: a send's text, caption or edit is longer than MaxTextChars;
// shorten it (or split it into several messages).
var ErrTooLong = errors.New("longer than WhatsApp accepts")

// CheckText refuses a send whose text, caption or edit is longer than
// MaxTextChars, naming the field. The REST API checks the same before it
// submits; this is the check for rule and plugin sends.
func CheckText(req *session.SendRequest) error {
	if req == nil {
		return nil
	}
	fields := []struct{ name, v string }{{"text", req.Text}}
	if req.Media != nil {
		fields = append(fields, struct{ name, v string }{"caption", req.Media.Caption})
	}
	if req.Edit != nil {
		fields = append(fields, struct{ name, v string }{"edit.text", req.Edit.Text})
	}
	for _, f := range fields {
		if n := utf8.RuneCountInString(f.v); n > MaxTextChars {
			return fmt.Errorf("%s of %d characters: %w (at most %d)", f.name, n, ErrTooLong, MaxTextChars)
		}
	}
	return nil
}

// Poll limits: what WhatsApp's clients let a poll have.
const (
	MinPollOptions     = 2
	MaxPollOptions     = 12
	MaxPollNameChars   = 255
	MaxPollOptionChars = 100
)

// FieldError is a send the daemon refuses before anything is stored,
// naming the field at fault (the REST API's field names: poll.name,
// poll.options[1], …). It wraps session.ErrInvalidRequest.
type FieldError struct {
	Field, Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func (e *FieldError) Unwrap() error { return session.ErrInvalidRequest }

// CheckPoll refuses a poll WhatsApp would not take: a name of 1 to 255
// characters, 2 to 12 distinct non-empty options of at most 100, and at
// most as many selectable options as there are options (0: any number).
// REST, rule and plugin sends all pass through it.
func CheckPoll(p *session.PollSend) error {
	if p == nil {
		return nil
	}
	if strings.TrimSpace(p.Name) == "" {
		return &FieldError{"poll.name", "must not be empty"}
	}
	if n := utf8.RuneCountInString(p.Name); n > MaxPollNameChars {
		return &FieldError{"poll.name", fmt.Sprintf("is %d characters long; WhatsApp takes at most %d", n, MaxPollNameChars)}
	}
	if n := len(p.Options); n < MinPollOptions || n > MaxPollOptions {
		return &FieldError{"poll.options", fmt.Sprintf("has %d options; a poll has %d to %d", n, MinPollOptions, MaxPollOptions)}
	}
	seen := make(map[string]int, len(p.Options))
	for i, o := range p.Options {
		field := fmt.Sprintf("poll.options[%d]", i)
		if strings.TrimSpace(o) == "" {
			return &FieldError{field, "must not be empty"}
		}
		if n := utf8.RuneCountInString(o); n > MaxPollOptionChars {
			return &FieldError{field, fmt.Sprintf("is %d characters long; WhatsApp takes at most %d", n, MaxPollOptionChars)}
		}
		if j, dup := seen[o]; dup {
			return &FieldError{field, fmt.Sprintf("repeats option %d (%q); options must differ", j, o)}
		}
		seen[o] = i
	}
	if int(p.SelectableCount) > len(p.Options) {
		return &FieldError{"poll.selectableCount", fmt.Sprintf("is %d, more than the %d options (0 lets voters pick any number)", p.SelectableCount, len(p.Options))}
	}
	return nil
}

// Submit books the account's slot, stores the message as pending and
// queues it to go at that slot, which it returns. The send happens later.
// ErrBusy when the queue is full, ErrClosed while stopping, the Pacer's
// error past the daily cap — then nothing was stored.
func (s *Sender) Submit(ctx context.Context, r Request) (*messages.Message, time.Time, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, time.Time{}, ErrClosed
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, time.Time{}, ErrBusy
	}
	at, err := s.reserve(ctx, r.AccountID)
	if err != nil {
		<-s.slots
		return nil, time.Time{}, err
	}
	m, err := s.store(ctx, r)
	if err != nil {
		<-s.slots
		return nil, time.Time{}, err
	}
	s.schedule(job{accountID: r.AccountID, req: r.Send}, m.StoredAt, at)
	return m, at, nil
}

// Send is the path of rule and plugin sends (r.Send.ID set): a send whose
// slot is now goes at once through the session, as before pacing, and its
// error is the caller's; one that must wait is stored as pending and
// queued like a REST send (its failure, if any, is then recorded on the
// message). It returns the slot. from, when r.From is empty, names the
// account's own JID for the pending message (looked up only when the send
// waits).
func (s *Sender) Send(ctx context.Context, r Request, from func() string) (time.Time, error) {
	if err := CheckText(r.Send); err != nil {
		return time.Time{}, err
	}
	if err := CheckPoll(r.Send.Poll); err != nil {
		return time.Time{}, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return time.Time{}, ErrClosed
	}
	at, err := s.reserve(ctx, r.AccountID)
	if err != nil {
		s.mu.RUnlock()
		return time.Time{}, err
	}
	if at.After(s.o.Clock.Now()) {
		defer s.mu.RUnlock()
		select {
		case s.slots <- struct{}{}:
		default:
			return time.Time{}, ErrBusy
		}
		if r.From == "" && from != nil {
			r.From = from()
		}
		m, err := s.store(ctx, r)
		if errors.Is(err, messages.ErrExists) {
			// The same action again (a re-run event): it is queued or sent.
			<-s.slots
			return at, nil
		} else if err != nil {
			<-s.slots
			return time.Time{}, err
		}
		s.schedule(job{accountID: r.AccountID, req: r.Send}, m.StoredAt, at)
		return at, nil
	}
	s.mu.RUnlock()
	_, err = s.o.Sessions.Send(ctx, r.AccountID, r.Send)
	return at, err
}

func (s *Sender) reserve(ctx context.Context, accountID string) (time.Time, error) {
	if s.o.Pacer == nil {
		return s.o.Clock.Now(), nil
	}
	return s.o.Pacer.Reserve(ctx, accountID)
}

func (s *Sender) store(ctx context.Context, r Request) (*messages.Message, error) {
	if r.Send.ID == "" {
		r.Send.ID = NewMessageID()
	}
	m := Pending(r, time.Now())
	if err := s.o.Store.StorePending(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// schedule hands j to the workers at at. The caller holds s.mu (read) and
// one slot, so the jobs channel has room.
func (s *Sender) schedule(j job, storedAt, at time.Time) {
	wait := at.Sub(s.o.Clock.Now())
	if wait <= 0 {
		s.jobs <- j
		return
	}
	id := j.accountID + "/" + j.req.ID
	w := &waiting{j: j, storedAt: storedAt}
	if s.o.Pacer != nil {
		s.o.Pacer.Queued(j.accountID, 1)
	}
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	s.waiting[id] = w
	w.timer = s.o.Clock.AfterFunc(wait, func() {
		s.mu.RLock()
		defer s.mu.RUnlock()
		s.waitMu.Lock()
		_, mine := s.waiting[id]
		delete(s.waiting, id)
		s.waitMu.Unlock()
		if !mine {
			return // Close took it
		}
		if s.o.Pacer != nil {
			s.o.Pacer.Queued(j.accountID, -1)
		}
		s.jobs <- j
	})
}

func (s *Sender) work() {
	for j := range s.jobs {
		s.send(j)
		<-s.slots
	}
}

func (s *Sender) send(j job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.SendTimeout)
	defer cancel()
	log := s.log.With(slog.String("account", j.accountID), slog.String("message_id", j.req.ID))
	res, err := s.o.Sessions.Send(ctx, j.accountID, j.req)
	if err == nil {
		log.Debug("message sent", slog.Time("timestamp", res.Timestamp))
		return
	}
	// Record the failure with a context of its own: the send's may be what
	// ran out.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if _, ferr := s.o.Store.MarkFailed(fctx, j.accountID, j.req.ID, reason(err)); ferr != nil {
		log.Error("send failed and the failure was not stored", slog.Any("error", err), slog.Any("store_error", ferr))
		return
	}
	log.Warn("send failed", slog.Any("error", err))
}

// reason is what clients read in the message's error field.
func reason(err error) string {
	switch {
	case errors.Is(err, session.ErrWrongState):
		return "the account is not connected: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "the send timed out"
	case errors.Is(err, context.Canceled):
		return "the daemon stopped before the send finished"
	}
	return err.Error()
}

// Close stops accepting messages and lets queued and running sends finish
// until ctx ends; sends still running then are cancelled and marked failed.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.jobs)
	s.waitMu.Lock()
	left := s.waiting
	s.waiting = map[string]*waiting{}
	s.waitMu.Unlock()
	s.mu.Unlock()
	s.giveUp(left)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return fmt.Errorf("sends cut off at shutdown: %w", ctx.Err())
	}
}

// OldestWaiting is when the oldest send still waiting for its slot was
// stored; false when none waits. The sweep of stale pending sends spares
// what is younger, however long it has been waiting.
func (s *Sender) OldestWaiting() (time.Time, bool) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	var oldest time.Time
	for _, w := range s.waiting {
		if oldest.IsZero() || w.storedAt.Before(oldest) {
			oldest = w.storedAt
		}
	}
	return oldest, !oldest.IsZero()
}

// giveUp marks failed the sends whose slot had not come when the daemon
// stopped: they are not kept across a restart, and the client must learn
// that they did not go.
func (s *Sender) giveUp(left map[string]*waiting) {
	for _, w := range left {
		w.timer.Stop()
		if s.o.Pacer != nil {
			s.o.Pacer.Queued(w.j.accountID, -1)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := s.o.Store.MarkFailed(ctx, w.j.accountID, w.j.req.ID, "the daemon stopped before the message's paced send time; send it again"); err != nil {
			s.log.Error("a paced send was given up at shutdown and the failure was not stored",
				slog.String("account", w.j.accountID), slog.String("message_id", w.j.req.ID), slog.Any("error", err))
		}
		cancel()
		<-s.slots
	}
	if len(left) > 0 {
		s.log.Warn("paced sends given up at shutdown", slog.Int("count", len(left)))
	}
}

// Pending is the stored form of r before it is sent: what the message will
// be, status pending. The driver's rendering replaces it once WhatsApp
// accepts the message.
func Pending(r Request, now time.Time) *messages.Message {
	q := r.Send
	m := &messages.Message{
		Message: event.Message{
			AccountID: r.AccountID, MessageID: q.ID, ChatID: q.To, From: r.From, FromMe: true,
			Timestamp: now.Unix(), Text: q.Text, Mentions: q.Mentions,
			IsGroup: strings.HasSuffix(q.To, "@g.us"), MediaURL: r.MediaURL,
			IsStatus:    q.To == StatusBroadcast,
			IsBroadcast: q.To != StatusBroadcast && strings.HasSuffix(q.To, "@broadcast"),
		},
		Source:  q.Source,
		MediaID: r.MediaID,
	}
	if m.Source == "" {
		m.Source = event.SourceAPI
	}
	if q.ReplyTo != nil {
		m.Quoted = &event.Quoted{MessageID: q.ReplyTo.MessageID, Participant: q.ReplyTo.Sender}
		if q.ReplyTo.Message != nil {
			m.Quoted.Type, m.Quoted.Text = q.ReplyTo.Message.Type, q.ReplyTo.Message.Text
		}
	}
	switch {
	case q.Media != nil:
		m.Type = event.MessageType(q.Media.Kind)
		m.HasMedia = true
		m.Text = q.Media.Caption
		m.Media = &event.Media{Mimetype: q.Media.Mimetype, Size: uint64(len(q.Media.Data)), SHA256: r.MediaSHA256,
			Filename: q.Media.Filename, Caption: q.Media.Caption, DurationSeconds: q.Media.Seconds,
			GIF: q.Media.Kind == session.MediaGIF, Voice: q.Media.Kind == session.MediaVoice}
	case q.Reaction != nil:
		m.Type = event.TypeReaction
		m.Reaction = &event.Reaction{TargetID: q.Reaction.MessageID, TargetChatID: q.To, TargetSender: q.Reaction.Sender,
			TargetFromMe: q.Reaction.FromMe, Emoji: q.Reaction.Emoji, Removed: q.Reaction.Emoji == ""}
	case q.Location != nil:
		m.Type = event.TypeLocation
		l := *q.Location
		m.Location = &l
	case len(q.Contacts) == 1:
		m.Type, m.Contacts = event.TypeContact, q.Contacts
	case len(q.Contacts) > 1:
		m.Type, m.Contacts = event.TypeContacts, q.Contacts
	case q.Edit != nil:
		m.Type, m.Text = event.TypeEdit, q.Edit.Text
	case q.Revoke != nil:
		m.Type = event.TypeRevoke
	case q.Poll != nil:
		m.Type = event.TypePoll
		m.Poll = PollOf(q.Poll)
	default:
		m.Type = event.TypeText
	}
	m.Kind = messages.PendingKind(m.Type)
	return m
}

// StatusBroadcast is where status (story) posts go.
const StatusBroadcast = "status@broadcast"

// PollOf is the poll a PollSend makes, with each option's hash (hex
// SHA-256 of its name), by which votes name it.
func PollOf(p *session.PollSend) *event.Poll {
	out := &event.Poll{Name: p.Name, SelectableCount: p.SelectableCount, Options: make([]event.PollOption, len(p.Options))}
	for i, o := range p.Options {
		sum := sha256.Sum256([]byte(o))
		out.Options[i] = event.PollOption{Name: o, Hash: hex.EncodeToString(sum[:])}
	}
	return out
}
