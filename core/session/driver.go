// Package session runs WhatsApp account sessions. This file is the contract
// between the account manager and the drivers that implement sessions:
// "whatsapp" (whatsmeow, the real network) and "sim" (an in-process network
// for first runs, demos, tests and benchmarks).
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Driver opens sessions of one kind. It is registered by name; accounts
// name their driver.
type Driver interface {
	// Name is the value of an account's "driver" field, e.g. "whatsapp".
	Name() string
	// Open prepares the account's session without connecting it. The session
	// reports everything that happens through sink.
	Open(ctx context.Context, acct Account, sink Sink) (Session, error)
}

// Account is what a driver knows of the account it serves.
type Account struct {
	ID   string
	Name string
	// Proxy is the account's proxy URL, "" for the driver's default. A
	// change restarts the session (Manager.SetProxy), so a session may
	// read it once.
	Proxy string
}

// Sink receives a session's events. Emit returns nil only when the event is
// durably stored: a driver acknowledges WhatsApp only after that, and on an
// error it does not acknowledge, so WhatsApp redelivers and nothing is lost.
// Emit must be idempotent by event ID — redelivery is normal.
type Sink interface {
	Emit(ctx context.Context, ev *event.Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, ev *event.Event) error

// Emit calls f.
func (f SinkFunc) Emit(ctx context.Context, ev *event.Event) error { return f(ctx, ev) }

// Session is one account's connection. Methods are safe for concurrent use.
// State changes are reported as account.* events through the Sink, never
// only in memory: the account manager persists them.
type Session interface {
	// Connect starts connecting in the background and returns once started.
	// An unpaired session starts pairing: account.qr events with rotating
	// codes, then account.connected. A paired one reconnects on its own with
	// backoff after a drop until Disconnect or Logout.
	Connect(ctx context.Context) error
	// Disconnect closes the connection and stops reconnecting; the auth
	// state is kept, so Connect resumes without pairing.
	Disconnect(ctx context.Context) error
	// Logout unlinks this device from the phone and deletes the auth state;
	// the account must pair again. It emits account.logged_out.
	Logout(ctx context.Context) error
	// PairPhone asks for a pairing code to type on the phone instead of
	// scanning a QR. phone is digits with country code (e.g. 15551234567).
	// The session must be connecting and unpaired; otherwise ErrWrongState.
	PairPhone(ctx context.Context, phone string) (code string, err error)

	// Send sends one message and returns once WhatsApp accepted it. The
	// message.sent event is emitted through the Sink before Send returns.
	Send(ctx context.Context, req *SendRequest) (*SendResult, error)
	// MarkRead sends read receipts for messages of one sender in one chat.
	MarkRead(ctx context.Context, chatID, senderID string, messageIDs []string) error
	// SetTyping shows or clears "typing…" / "recording audio…" in a chat.
	SetTyping(ctx context.Context, chatID string, state TypingState) error
	// DownloadMedia streams the decrypted bytes of a media message. When the
	// media is gone from WhatsApp's servers the driver asks the phone to
	// re-upload it and returns ErrMediaRetryRequested: try again later.
	DownloadMedia(ctx context.Context, msg *event.Message) (io.ReadCloser, error)

	// Close releases the session without logging out (daemon shutdown).
	Close(ctx context.Context) error
}

// TypingState is the chat presence shown to the other side.
type TypingState string

const (
	TypingComposing TypingState = "composing"
	TypingRecording TypingState = "recording"
	TypingPaused    TypingState = "paused"
)

// MediaKind says how media is sent; WhatsApp renders each differently.
type MediaKind string

const (
	MediaImage    MediaKind = "image"
	MediaVideo    MediaKind = "video"
	MediaGIF      MediaKind = "gif"
	MediaAudio    MediaKind = "audio"
	MediaVoice    MediaKind = "voice" // push-to-talk voice note
	MediaDocument MediaKind = "document"
	MediaSticker  MediaKind = "sticker"
)

// SendRequest is one outgoing message. Exactly one of Text, Media, Reaction,
// Location, Contacts, Edit, Revoke or Poll is the content; ReplyTo and Mentions
// apply to text and media.
type SendRequest struct {
	// To is the recipient chat: a JID (user@s.whatsapp.net, group@g.us,
	// lid@lid) — callers resolve phone numbers before calling Send.
	To string
	// ID optionally fixes the WhatsApp message ID (idempotent retries).
	ID string
	// Source is recorded on the message.sent event (api, rule, plugin).
	Source event.Source

	Text     string
	Media    *MediaSend
	Reaction *ReactionSend
	Location *event.Location
	Contacts []event.Contact
	Edit     *EditSend
	Revoke   *RevokeSend
	Poll     *PollSend // groups.go

	// StatusRecipients are the contacts who see a status (story) post: To
	// is status@broadcast. Broadcast lists (…@broadcast) need no more.
	StatusRecipients []string
	// MentionAll mentions every participant of the group To (the driver
	// fills Mentions from the group's participants).
	MentionAll bool

	// ReplyTo quotes an earlier message of the same chat.
	ReplyTo *QuoteRef
	// Mentions are user JIDs mentioned in Text or the caption.
	Mentions []string
}

// MediaSend is media to upload and send.
type MediaSend struct {
	Kind     MediaKind
	Data     []byte
	Mimetype string
	Filename string // documents
	Caption  string
	// Seconds is the duration of audio/video, when known.
	Seconds uint32
}

// ReactionSend reacts to a message; an empty Emoji removes the reaction.
type ReactionSend struct {
	MessageID string
	// Sender of the reacted message (needed in groups); empty for 1:1 chats.
	Sender string
	FromMe bool
	Emoji  string
}

// EditSend replaces the text of a message this account sent.
type EditSend struct {
	MessageID string
	Text      string
}

// RevokeSend deletes a message for everyone. Sender is set when an admin
// revokes another member's message in a group.
type RevokeSend struct {
	MessageID string
	Sender    string
}

// QuoteRef identifies the quoted message.
type QuoteRef struct {
	MessageID string
	Sender    string
	// Message is the quoted message when known, so the recipient's client can
	// show its preview.
	Message *event.Message
}

// SendResult is what WhatsApp accepted.
type SendResult struct {
	MessageID string
	Timestamp time.Time
	// Event is the message.sent event that was emitted for it.
	Event *event.Event
}

// Errors drivers return; callers decide by them.
var (
	// ErrWrongState: the session is not in a state for this call (e.g. send
	// while pairing, pairing code while connected). Answer 409.
	ErrWrongState = errors.New("session is not in the right state")
	// ErrNotPaired: the account has no auth state; pair it first.
	ErrNotPaired = errors.New("account is not paired")
	// ErrInvalidRequest wraps a send request the driver cannot express
	// (e.g. unsupported media kind). Answer 400.
	ErrInvalidRequest = errors.New("invalid send request")
	// ErrMediaRetryRequested: the media must be re-uploaded by the phone; a
	// retry request was sent. Try the download again later.
	ErrMediaRetryRequested = errors.New("media expired on WhatsApp; re-upload requested from the phone")
	// ErrMediaGone: WhatsApp's servers no longer have the media and the
	// phone answered that it does not have it either. Do not retry.
	ErrMediaGone = errors.New("media expired on WhatsApp and the phone no longer has it")
	// ErrNoMedia: the message carries no downloadable media.
	ErrNoMedia = errors.New("message has no media")
	// ErrClosed: the manager is shutting down (or a driver's session closed
	// under the call). It wraps ErrWrongState; the pipeline leaves an event
	// whose stage failed with it unprocessed, for the next start.
	ErrClosed = fmt.Errorf("sessions are closed: the daemon is stopping: %w", ErrWrongState)
)
