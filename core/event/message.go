package event

// MessageType classifies a message's content. Values are public contract.
type MessageType string

const (
	TypeText         MessageType = "text"
	TypeImage        MessageType = "image"
	TypeVideo        MessageType = "video"
	TypeGIF          MessageType = "gif" // a video with gifPlayback set
	TypePTV          MessageType = "ptv" // a round "video note"
	TypeAudio        MessageType = "audio"
	TypeVoice        MessageType = "voice" // a push-to-talk voice note
	TypeDocument     MessageType = "document"
	TypeSticker      MessageType = "sticker"
	TypeLocation     MessageType = "location"
	TypeLiveLocation MessageType = "live_location"
	TypeContact      MessageType = "contact"
	TypeContacts     MessageType = "contacts"
	TypeReaction     MessageType = "reaction"
	TypePoll         MessageType = "poll"
	TypePollVote     MessageType = "poll_vote"
	TypeEdit         MessageType = "edit"
	TypeRevoke       MessageType = "revoke"
	// TypeProtocol is any other protocol message (disappearing-timer change,
	// history-sync notification, ...): not user content, kept for the record.
	TypeProtocol MessageType = "protocol"
	// TypeUnknown is content this version does not understand. The raw proto
	// is still kept, so nothing is lost and a later version can re-read it.
	TypeUnknown MessageType = "unknown"
)

// HasMedia reports whether messages of this type carry a downloadable file.
func (t MessageType) HasMedia() bool {
	switch t {
	case TypeImage, TypeVideo, TypeGIF, TypePTV, TypeAudio, TypeVoice, TypeDocument, TypeSticker:
		return true
	}
	return false
}

// Message is one WhatsApp message. Its first block of fields is the message
// document of the reference architecture; the rest is what WhatsApp adds.
//
// JIDs are strings in WhatsApp's form ("123@s.whatsapp.net", "456@lid",
// "789-123@g.us"). WhatsApp addresses a user either by phone number (PN) or by
// an opaque LID; ChatID and From are whichever the message used, and the
// *Lid / *Pn fields hold both forms whenever WhatsApp told us both.
type Message struct {
	AccountID string      `json:"accountId" bson:"accountId"`
	MessageID string      `json:"messageId" bson:"messageId"`
	ChatID    string      `json:"chatId" bson:"chatId"`
	From      string      `json:"from" bson:"from"`
	FromMe    bool        `json:"fromMe" bson:"fromMe"`
	Timestamp int64       `json:"timestamp" bson:"timestamp"` // Unix seconds, as in the reference
	Type      MessageType `json:"type" bson:"type"`
	// Text is the message text, or the caption for captioned media, so that
	// keyword rules see both without caring about the type.
	Text     string `json:"text,omitempty" bson:"text,omitempty"`
	HasMedia bool   `json:"hasMedia" bson:"hasMedia"`
	// MediaURL is where Wildcat archived the media (empty until archived).
	// WhatsApp's own CDN URL is Media.URL.
	MediaURL string `json:"mediaUrl,omitempty" bson:"mediaUrl,omitempty"`

	ChatLID  string `json:"chatLid,omitempty" bson:"chatLid,omitempty"`
	ChatPN   string `json:"chatPn,omitempty" bson:"chatPn,omitempty"`
	FromLID  string `json:"fromLid,omitempty" bson:"fromLid,omitempty"`
	FromPN   string `json:"fromPn,omitempty" bson:"fromPn,omitempty"`
	PushName string `json:"pushName,omitempty" bson:"pushName,omitempty"`

	Quoted   *Quoted  `json:"quoted,omitempty" bson:"quoted,omitempty"`
	Mentions []string `json:"mentions,omitempty" bson:"mentions,omitempty"`

	Media       *Media       `json:"media,omitempty" bson:"media,omitempty"`
	Location    *Location    `json:"location,omitempty" bson:"location,omitempty"`
	Contacts    []Contact    `json:"contacts,omitempty" bson:"contacts,omitempty"`
	Poll        *Poll        `json:"poll,omitempty" bson:"poll,omitempty"`
	PollVote    *PollVote    `json:"pollVote,omitempty" bson:"pollVote,omitempty"`
	LinkPreview *LinkPreview `json:"linkPreview,omitempty" bson:"linkPreview,omitempty"`

	IsGroup     bool `json:"isGroup" bson:"isGroup"`
	IsBroadcast bool `json:"isBroadcast" bson:"isBroadcast"`
	IsStatus    bool `json:"isStatus" bson:"isStatus"` // posted to status@broadcast ("stories")
	IsEphemeral bool `json:"isEphemeral" bson:"isEphemeral"`
	IsViewOnce  bool `json:"isViewOnce" bson:"isViewOnce"`
	IsForwarded bool `json:"isForwarded" bson:"isForwarded"`
	// Edited and Revoked describe the stored message's later fate: the store
	// sets them when a message.edited / message.revoked event targets it.
	Edited  bool `json:"edited" bson:"edited"`
	Revoked bool `json:"revoked" bson:"revoked"`

	// Raw is the whatsmeow waE2E.Message exactly as received (wrappers such
	// as ephemeral or view-once included), protobuf wire format. JSON renders
	// it as base64, BSON as binary.
	Raw []byte `json:"raw,omitempty" bson:"raw,omitempty"`
}

// Quoted is the message a reply refers to.
type Quoted struct {
	MessageID   string      `json:"messageId" bson:"messageId"`
	Participant string      `json:"participant,omitempty" bson:"participant,omitempty"` // author of the quoted message
	ChatID      string      `json:"chatId,omitempty" bson:"chatId,omitempty"`           // only when it is in another chat
	Type        MessageType `json:"type,omitempty" bson:"type,omitempty"`
	Text        string      `json:"text,omitempty" bson:"text,omitempty"`
}

// Media is the metadata of a media attachment. The hashes and key are what
// a download needs; they are also inside Raw.
type Media struct {
	Mimetype          string `json:"mimetype,omitempty" bson:"mimetype,omitempty"`
	Size              uint64 `json:"size,omitempty" bson:"size,omitempty"`
	SHA256            string `json:"sha256,omitempty" bson:"sha256,omitempty"`               // hex, of the plaintext
	FileEncSHA256     string `json:"fileEncSha256,omitempty" bson:"fileEncSha256,omitempty"` // hex, of the ciphertext
	MediaKey          []byte `json:"mediaKey,omitempty" bson:"mediaKey,omitempty"`
	MediaKeyTimestamp int64  `json:"mediaKeyTimestamp,omitempty" bson:"mediaKeyTimestamp,omitempty"`
	DirectPath        string `json:"directPath,omitempty" bson:"directPath,omitempty"`
	URL               string `json:"url,omitempty" bson:"url,omitempty"` // WhatsApp CDN, encrypted
	Filename          string `json:"filename,omitempty" bson:"filename,omitempty"`
	Caption           string `json:"caption,omitempty" bson:"caption,omitempty"`
	DurationSeconds   uint32 `json:"durationSeconds,omitempty" bson:"durationSeconds,omitempty"`
	Width             uint32 `json:"width,omitempty" bson:"width,omitempty"`
	Height            uint32 `json:"height,omitempty" bson:"height,omitempty"`
	GIF               bool   `json:"gif,omitempty" bson:"gif,omitempty"`
	PTV               bool   `json:"ptv,omitempty" bson:"ptv,omitempty"`
	Voice             bool   `json:"voice,omitempty" bson:"voice,omitempty"` // PTT voice note
	PageCount         uint32 `json:"pageCount,omitempty" bson:"pageCount,omitempty"`
	IsAnimated        bool   `json:"isAnimated,omitempty" bson:"isAnimated,omitempty"`
}

// Location is a pinned or live location.
type Location struct {
	Latitude  float64 `json:"lat" bson:"lat"`
	Longitude float64 `json:"lng" bson:"lng"`
	Name      string  `json:"name,omitempty" bson:"name,omitempty"`
	Address   string  `json:"address,omitempty" bson:"address,omitempty"`
	URL       string  `json:"url,omitempty" bson:"url,omitempty"`
	Live      bool    `json:"live,omitempty" bson:"live,omitempty"`
	// AccuracyMeters, SpeedMps, Heading (degrees clockwise from magnetic
	// north) and Sequence are mostly set for live locations.
	AccuracyMeters uint32  `json:"accuracy,omitempty" bson:"accuracy,omitempty"`
	SpeedMps       float32 `json:"speed,omitempty" bson:"speed,omitempty"`
	Heading        uint32  `json:"heading,omitempty" bson:"heading,omitempty"`
	Sequence       int64   `json:"sequence,omitempty" bson:"sequence,omitempty"`
	Caption        string  `json:"caption,omitempty" bson:"caption,omitempty"`
}

// Contact is one shared contact card.
type Contact struct {
	DisplayName string `json:"displayName" bson:"displayName"`
	VCard       string `json:"vcard" bson:"vcard"`
}

// Poll is a poll creation.
type Poll struct {
	Name            string       `json:"name" bson:"name"`
	Options         []PollOption `json:"options" bson:"options"`
	SelectableCount uint32       `json:"selectableCount" bson:"selectableCount"` // 0 means any number
}

// PollOption is one answer of a poll. Hash is the hex SHA-256 of Name, which
// is how votes refer to options (PollVote.SelectedOptions).
type PollOption struct {
	Name string `json:"name" bson:"name"`
	Hash string `json:"hash" bson:"hash"`
}

// PollVote is a vote on a poll. WhatsApp end-to-end encrypts the selection
// with a key derived from the poll's secret, so the vote arrives as EncPayload
// and EncIV; the session driver decrypts it (it needs the poll message's
// secret from the auth store) and fills SelectedOptions. An empty
// SelectedOptions with Decrypted set means the voter withdrew their vote.
type PollVote struct {
	PollMessageID     string   `json:"pollMessageId" bson:"pollMessageId"`
	PollChatID        string   `json:"pollChatId,omitempty" bson:"pollChatId,omitempty"`
	PollCreator       string   `json:"pollCreator,omitempty" bson:"pollCreator,omitempty"`
	PollFromMe        bool     `json:"pollFromMe,omitempty" bson:"pollFromMe,omitempty"`
	SelectedOptions   []string `json:"selectedOptions,omitempty" bson:"selectedOptions,omitempty"` // hex SHA-256 option hashes
	Decrypted         bool     `json:"decrypted" bson:"decrypted"`
	EncPayload        []byte   `json:"encPayload,omitempty" bson:"encPayload,omitempty"`
	EncIV             []byte   `json:"encIv,omitempty" bson:"encIv,omitempty"`
	SenderTimestampMs int64    `json:"senderTimestampMs,omitempty" bson:"senderTimestampMs,omitempty"`
}

// LinkPreview is the preview WhatsApp attached to a text with a link.
type LinkPreview struct {
	URL         string `json:"url" bson:"url"`
	Title       string `json:"title,omitempty" bson:"title,omitempty"`
	Description string `json:"description,omitempty" bson:"description,omitempty"`
}

// Reaction is an emoji reaction to a message. An empty Emoji removes the
// sender's earlier reaction; Emoji is therefore never omitted from JSON.
type Reaction struct {
	TargetID          string `json:"targetId" bson:"targetId"`
	TargetChatID      string `json:"targetChatId,omitempty" bson:"targetChatId,omitempty"`
	TargetSender      string `json:"targetSender,omitempty" bson:"targetSender,omitempty"`
	TargetFromMe      bool   `json:"targetFromMe" bson:"targetFromMe"`
	Emoji             string `json:"emoji" bson:"emoji"`
	Removed           bool   `json:"removed" bson:"removed"`
	SenderTimestampMs int64  `json:"senderTimestampMs,omitempty" bson:"senderTimestampMs,omitempty"`
}

// Edit replaces the content of an earlier message.
type Edit struct {
	TargetID string `json:"targetId" bson:"targetId"`
	// Text is the new text (or caption).
	Text string `json:"text" bson:"text"`
	// Message is the new content, normalised; identity fields (ids, chat,
	// sender, raw) are left empty because they belong to the target.
	Message    *Message `json:"message,omitempty" bson:"message,omitempty"`
	EditedAtMs int64    `json:"editedAtMs,omitempty" bson:"editedAtMs,omitempty"`
}

// Revoke deletes an earlier message for everyone.
type Revoke struct {
	TargetID     string `json:"targetId" bson:"targetId"`
	TargetSender string `json:"targetSender,omitempty" bson:"targetSender,omitempty"`
	By           string `json:"by" bson:"by"`
	// Admin is set when a group admin deleted someone else's message.
	Admin bool `json:"admin" bson:"admin"`
}
