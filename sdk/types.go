package sdk

import (
	"errors"
	"time"

	"github.com/wildcathub/wildcat/core/event"
)

// Event is one thing that happened on one account: a message, a receipt, a
// reaction, an account state change, ... It is the daemon's own type, so its
// fields, kinds and JSON shape are the public contract documented in
// core/event: ev.Kind says what happened, ev.Message (for message kinds)
// holds the message.
type Event = event.Event

// Aliases of the event payload types plugin authors touch most.
type (
	// Kind names what happened ("message.received", ...).
	Kind = event.Kind
	// Message is one WhatsApp message.
	Message = event.Message
	// Media is the metadata of a media attachment.
	Media = event.Media
	// Location is a pinned or live location.
	Location = event.Location
	// Contact is a shared contact card.
	Contact = event.Contact
)

// Frequently used event kinds; event.Kinds() lists all.
const (
	KindMessageReceived = event.KindMessageReceived
	KindMessageSent     = event.KindMessageSent
	KindMessageStatus   = event.KindMessageStatus
	KindMessageReaction = event.KindMessageReaction
	KindMessageEdited   = event.KindMessageEdited
	KindMessageRevoked  = event.KindMessageRevoked
)

// ActionKind says what an Action does.
type ActionKind string

const (
	// ActionReply sends Message to the event's chat (Message.To is ignored),
	// quoting the event's message when Quote is set.
	ActionReply ActionKind = "reply"
	// ActionSend sends Message to Message.To on the event's account.
	ActionSend ActionKind = "send"
	// ActionDrop stops later pipeline stages from seeing the event; it stays
	// stored.
	ActionDrop ActionKind = "drop"
	// ActionTag adds Tags to the event.
	ActionTag ActionKind = "tag"
	// ActionAnnotate sets the annotation Key to Value on the event.
	ActionAnnotate ActionKind = "annotate"
	// ActionRoute delivers the event only to the named Sinks.
	ActionRoute ActionKind = "route"
)

// Action is one effect a Handler asks the pipeline for. Build actions with
// Reply, QuoteReply, Send, SendText, Drop, Tag, Annotate and Route rather than
// by hand; the fields used depend on Kind.
type Action struct {
	Kind    ActionKind
	Message *SendRequest // reply, send
	Quote   bool         // reply
	Tags    []string     // tag
	Key     string       // annotate
	Value   string       // annotate
	Sinks   []string     // route
}

// Reply answers in the event's chat with a text.
func Reply(text string) Action {
	return Action{Kind: ActionReply, Message: &SendRequest{Text: text}}
}

// QuoteReply answers in the event's chat with a text quoting the event's message.
func QuoteReply(text string) Action {
	return Action{Kind: ActionReply, Message: &SendRequest{Text: text}, Quote: true}
}

// ReplyWith answers in the event's chat with any message (media, location, ...).
func ReplyWith(msg *SendRequest) Action { return Action{Kind: ActionReply, Message: msg} }

// Send sends msg to msg.To on the event's account.
func Send(msg *SendRequest) Action { return Action{Kind: ActionSend, Message: msg} }

// SendText sends a text to a chat (a JID) on the event's account.
func SendText(to, text string) Action {
	return Action{Kind: ActionSend, Message: &SendRequest{To: to, Text: text}}
}

// Drop stops later stages from seeing the event.
func Drop() Action { return Action{Kind: ActionDrop} }

// Tag adds tags to the event.
func Tag(tags ...string) Action { return Action{Kind: ActionTag, Tags: tags} }

// Annotate sets one annotation on the event.
func Annotate(key, value string) Action {
	return Action{Kind: ActionAnnotate, Key: key, Value: value}
}

// Route delivers the event to the named sinks only.
func Route(sinks ...string) Action { return Action{Kind: ActionRoute, Sinks: sinks} }

// SendRequest is one outgoing message. Exactly one of Text, Media, Reaction,
// Location, Contacts, Edit, Revoke or Poll is the content; ReplyTo and
// Mentions apply to text and media.
type SendRequest struct {
	// To is the recipient chat JID: user@s.whatsapp.net, group@g.us or lid@lid.
	To string
	// ID optionally fixes the WhatsApp message id, so a retried send is not
	// sent twice.
	ID string

	Text     string
	Media    *MediaSend
	Reaction *ReactionSend
	Location *Location
	Contacts []Contact
	Edit     *EditSend
	Revoke   *RevokeSend
	Poll     *PollSend

	// ReplyTo quotes an earlier message of the same chat.
	ReplyTo *QuoteRef
	// Mentions are user JIDs mentioned in Text or the caption.
	Mentions []string
}

// MediaSend is media to upload and send: the bytes in Data, or a blob stored
// earlier with Host.PutBlob named by BlobID (better for large files).
type MediaSend struct {
	// Kind: image, video, gif, audio, voice, document or sticker.
	Kind     string
	Data     []byte
	BlobID   string
	Mimetype string
	Filename string // documents
	Caption  string
	Seconds  uint32 // duration of audio and video, when known
}

// ReactionSend reacts to a message; an empty Emoji removes the reaction.
type ReactionSend struct {
	MessageID string
	Sender    string // author of the reacted message, in groups
	FromMe    bool
	Emoji     string
}

// EditSend replaces the text of a message this account sent.
type EditSend struct {
	MessageID string
	Text      string
}

// RevokeSend deletes a message for everyone; Sender is set when a group
// admin deletes another member's message.
type RevokeSend struct {
	MessageID string
	Sender    string
}

// PollSend is a poll: a question, 2 to 12 distinct options of at most 100
// characters, and how many options a voter may pick (0: any number). A
// poll WhatsApp would not take is refused, as a REST send's is.
type PollSend struct {
	Name            string
	Options         []string
	SelectableCount uint32
}

// QuoteRef identifies a quoted message.
type QuoteRef struct {
	MessageID string
	Sender    string
}

// Job is one delivery attempt of an event to a sink target.
type Job struct {
	// ID is stable across attempts: the receiver's idempotency key.
	ID string
	// Event is what to deliver.
	Event *Event
	// Target is the sink target the pipeline routed the event to (for
	// example a webhook endpoint's name); a plugin serving one target may
	// ignore it.
	Target string
	// Attempt is 1 for the first attempt.
	Attempt int
	// TargetConfig is the target's settings as JSON, handed over by the
	// daemon component that owns the target (e.g. a webhook endpoint's URL,
	// secrets and headers); nil for targets that need none.
	TargetConfig []byte
}

// Outcome is how a delivery attempt ended.
type Outcome string

const (
	// OutcomeOK: delivered; the job is done.
	OutcomeOK Outcome = "ok"
	// OutcomeRetry: a temporary failure; the outbox tries again later.
	OutcomeRetry Outcome = "retry"
	// OutcomeFail: a permanent failure; the job is dead-lettered now.
	OutcomeFail Outcome = "fail"
)

// Result is what a Sink reports for one attempt. Build it with OK, Retry,
// RetryAfter or Fail.
type Result struct {
	Outcome Outcome
	// RetryAfter, with OutcomeRetry, asks for the next attempt no sooner
	// than this (e.g. an HTTP Retry-After); zero leaves it to the schedule.
	RetryAfter time.Duration
	// Err says why the attempt failed; it is kept in the job's attempt log.
	Err error
	// Status and Response are the target's answer for the attempt log, with
	// any outcome: a status code (e.g. HTTP; 0 if none) and the start of the
	// response body (the daemon truncates it).
	Status   int
	Response string
	// DisableTarget, with OutcomeFail, says the target itself is gone (e.g.
	// HTTP 410): the daemon stops delivering to it. Build it with Disable.
	DisableTarget bool
}

// OK reports a successful delivery.
func OK() Result { return Result{Outcome: OutcomeOK} }

// Retry reports a temporary failure.
func Retry(err error) Result { return Result{Outcome: OutcomeRetry, Err: orUnknown(err)} }

// RetryAfter reports a temporary failure and when to try again at the earliest.
func RetryAfter(d time.Duration, err error) Result {
	return Result{Outcome: OutcomeRetry, RetryAfter: d, Err: orUnknown(err)}
}

// Fail reports a permanent failure: no retry will help (e.g. HTTP 410).
func Fail(err error) Result { return Result{Outcome: OutcomeFail, Err: orUnknown(err)} }

// Disable reports that the target is gone for good (e.g. HTTP 410): the job
// is dead-lettered and the daemon stops delivering to the target.
func Disable(err error) Result {
	return Result{Outcome: OutcomeFail, Err: orUnknown(err), DisableTarget: true}
}

func orUnknown(err error) error {
	if err == nil {
		return errors.New("no reason given")
	}
	return err
}
