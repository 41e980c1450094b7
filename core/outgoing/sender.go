// Package outgoing sends messages on behalf of the daemon (REST sends
// today; rule and plugin replies take the same path): each message is stored
// as pending first, then sent by a bounded pool of workers through the
// account's session, and its status follows — sent (the driver's rendering
// completes the stored message) or failed with the reason.
package outgoing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

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

// Options configures a Sender.
type Options struct {
	Sessions Sessions
	Store    Store
	Logger   *slog.Logger
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

// Sender runs the workers.
type Sender struct {
	o     Options
	log   *slog.Logger
	slots chan struct{} // one per queued or running job: the bound
	jobs  chan job

	mu     sync.RWMutex
	closed bool

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
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		o: o, log: o.Logger,
		slots: make(chan struct{}, o.Workers+o.QueueSize),
		jobs:  make(chan job, o.Workers+o.QueueSize),
		ctx:   ctx, cancel: cancel,
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

// Submit stores the message as pending and queues it. It returns the
// stored message; the send happens later. ErrBusy when the queue is full,
// ErrClosed while stopping — then nothing was stored.
func (s *Sender) Submit(ctx context.Context, r Request) (*messages.Message, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	if r.Send.ID == "" {
		r.Send.ID = NewMessageID()
	}
	m := Pending(r, time.Now())
	if err := s.o.Store.StorePending(ctx, m); err != nil {
		<-s.slots
		return nil, err
	}
	// Never blocks: jobs has room for every slot.
	s.jobs <- job{accountID: r.AccountID, req: r.Send}
	return m, nil
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
	s.mu.Unlock()
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
	default:
		m.Type = event.TypeText
	}
	m.Kind = messages.PendingKind(m.Type)
	return m
}
