package watest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/gcmutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// Media retry, as WhatsApp does it: media on the CDN expires (a download
// answers 404); the companion sends its own phone a
// <receipt type="server-error"> carrying a ServerErrorReceipt encrypted
// with a key derived from the message's media key; the phone, which holds
// the message and its media, uploads the file again and answers with a
// "mediaretry" notification whose encrypted MediaRetryNotification names
// the new direct path.

// mediaRetryInfo is the HKDF info of the key that encrypts both the request
// and the answer (whatsmeow mediaretry.go, getMediaRetryKey).
const mediaRetryInfo = "WhatsApp Media Retry Notification"

// phoneMedia is an attachment of a contact's message as the account's phone
// keeps it: the media key to open retry requests and the file to upload
// again. Guarded by srv.mu.
type phoneMedia struct {
	to       *Account
	chat     types.JID // the contact who sent it
	mediaKey []byte
	path     string // current download path, without query
	blob     []byte // the encrypted file, kept after it expires
	uploads  int    // re-uploads so far
	lost     bool   // the phone deleted it too: retries are answered "not available"
	retries  []MediaRetryRequest
}

// MediaRetryRequest is one media retry receipt the client sent its phone,
// as the double understood it.
type MediaRetryRequest struct {
	MessageID types.MessageID
	// Chat, FromMe and Participant are the <rmr> attributes: which message
	// the client means.
	Chat        types.JID
	FromMe      bool
	Participant types.JID
	// Err is set when the double could not open the request: unknown
	// message, wrong media key, stanza ID or chat. The phone then answers
	// with an error (code 2, media not available) or not at all.
	Err error
	// DirectPath is where the phone uploaded the media again (with the
	// query whatsmeow appends its parameters to); empty if it did not.
	DirectPath string
}

func notificationKey(id string) string { return "notification/" + id }

// WaitNotificationAck waits until the client acknowledged the notification
// with the given id, which it does once its handlers have run (at once when
// SynchronousAck is off). A mediaretry notification has the id of the
// message it answers for.
func (s *Server) WaitNotificationAck(ctx context.Context, id string) error {
	return s.waitFor(ctx, "the client to acknowledge notification "+id, func() bool {
		d := s.deliveries[notificationKey(id)]
		return d != nil && len(d.acks) > 0
	})
}

func mediaRetryKey(mediaKey []byte) []byte {
	return hkdfutil.SHA256(mediaKey, nil, []byte(mediaRetryInfo), 32)
}

// mediaPart is the downloadable attachment of msg, if any.
func mediaPart(msg *waE2E.Message) whatsmeow.DownloadableMessage {
	switch {
	case msg.GetImageMessage() != nil:
		return msg.GetImageMessage()
	case msg.GetVideoMessage() != nil:
		return msg.GetVideoMessage()
	case msg.GetPtvMessage() != nil:
		return msg.GetPtvMessage()
	case msg.GetAudioMessage() != nil:
		return msg.GetAudioMessage()
	case msg.GetDocumentMessage() != nil:
		return msg.GetDocumentMessage()
	case msg.GetStickerMessage() != nil:
		return msg.GetStickerMessage()
	}
	return nil
}

func pathOnly(directPath string) string {
	if i := strings.IndexByte(directPath, '?'); i >= 0 {
		return directPath[:i]
	}
	return directPath
}

// rememberMediaLocked records the attachment of a contact's message id to
// the account a, as a's phone receives it too. Callers hold s.mu.
func (s *Server) rememberMediaLocked(id types.MessageID, a *Account, from types.JID, msg *waE2E.Message) {
	d := mediaPart(msg)
	if d == nil || len(d.GetMediaKey()) == 0 {
		return
	}
	path := pathOnly(d.GetDirectPath())
	s.phoneMedia[id] = &phoneMedia{
		to:       a,
		chat:     from,
		mediaKey: d.GetMediaKey(),
		path:     path,
		blob:     s.media[path],
	}
}

// ExpireMedia makes the media of the contact's message id disappear from
// the media servers, as WhatsApp's CDN drops old files: its download URL
// answers 404 from now on. The account's phone still has the file and
// uploads it again when the client asks with a media retry receipt.
func (s *Server) ExpireMedia(id types.MessageID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pm := s.phoneMedia[id]
	if pm == nil {
		return fmt.Errorf("watest: no contact message %s with media", id)
	}
	if pm.blob == nil {
		return fmt.Errorf("watest: the media of %s was never stored by the double", id)
	}
	delete(s.media, pm.path)
	s.notify()
	return nil
}

// LoseMedia is ExpireMedia for a file the phone no longer has either: a
// media retry receipt for it is answered with error code 2 (not available).
func (s *Server) LoseMedia(id types.MessageID) error {
	if err := s.ExpireMedia(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phoneMedia[id].lost = true
	return nil
}

// MediaRetryRequests lists the media retry receipts the client sent for the
// message id, in order.
func (s *Server) MediaRetryRequests(id types.MessageID) []MediaRetryRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pm := s.phoneMedia[id]; pm != nil {
		return slices.Clone(pm.retries)
	}
	return slices.Clone(s.strayRetries[id])
}

// WaitMediaRetry waits for the client's first media retry receipt for the
// message id.
func (s *Server) WaitMediaRetry(ctx context.Context, id types.MessageID) (MediaRetryRequest, error) {
	var req MediaRetryRequest
	err := s.waitFor(ctx, "a media retry receipt for "+id, func() bool {
		reqs := s.strayRetries[id]
		if pm := s.phoneMedia[id]; pm != nil {
			reqs = pm.retries
		}
		if len(reqs) > 0 {
			req = reqs[0]
			return true
		}
		return false
	})
	return req, err
}

// handleMediaRetryReceipt plays the account's phone receiving a media retry
// receipt: it opens the request with the message's media key, uploads the
// file again under a new path and answers with a "mediaretry"
// notification. A request it cannot open is answered with error code 2
// (media not available), as a phone that lost the message does.
func (s *Server) handleMediaRetryReceipt(c *conn, node *waBinary.Node) {
	id, _ := node.Attrs["id"].(string)
	rmr, ok := node.GetOptionalChildByTag("rmr")
	if !ok {
		s.logf("%s: media retry receipt %s without <rmr>", c.name, id)
		return
	}
	rag := rmr.AttrGetter()
	req := MediaRetryRequest{
		MessageID:   id,
		Chat:        rag.OptionalJIDOrEmpty("jid"),
		FromMe:      rag.OptionalBool("from_me"),
		Participant: rag.OptionalJIDOrEmpty("participant"),
	}
	encP, _ := node.GetChildByTag("encrypt", "enc_p").Content.([]byte)
	encIV, _ := node.GetChildByTag("encrypt", "enc_iv").Content.([]byte)

	s.mu.Lock()
	a := c.account
	pm := s.phoneMedia[id]
	var reqErr error
	switch {
	case a == nil:
		reqErr = errors.New("media retry receipt before login")
	case pm == nil:
		reqErr = fmt.Errorf("no contact message %s with media", id)
	case pm.to != a:
		reqErr = fmt.Errorf("message %s was not sent to %s", id, a.jid)
	case req.Chat.ToNonAD() != pm.chat || req.FromMe:
		reqErr = fmt.Errorf("<rmr> names chat %s from_me=%t, the message is from %s", req.Chat, req.FromMe, pm.chat)
	case pm.lost:
		reqErr = fmt.Errorf("the phone no longer has the media of %s", id)
	}
	var mediaKey []byte
	if reqErr == nil {
		mediaKey = pm.mediaKey
	}
	s.mu.Unlock()

	if reqErr == nil {
		reqErr = openMediaRetryReceipt(id, mediaKey, encP, encIV)
	}
	var answer []waBinary.Node
	if reqErr == nil {
		s.mu.Lock()
		pm.uploads++
		pm.path = fmt.Sprintf("/v/t62.7118-24/%s-r%d.enc", hex.EncodeToString(randomBytes(12)), pm.uploads)
		s.media[pm.path] = pm.blob
		req.DirectPath = pm.path + "?ccb=11-4&oh=watest-retry&oe=0"
		s.mu.Unlock()
		ct, iv, err := sealMediaRetryNotification(id, mediaKey, &waMmsRetry.MediaRetryNotification{
			StanzaID:   proto.String(id),
			DirectPath: proto.String(req.DirectPath),
			Result:     waMmsRetry.MediaRetryNotification_SUCCESS.Enum(),
		})
		if err != nil {
			reqErr = err
		} else {
			answer = []waBinary.Node{{Tag: "encrypt", Content: []waBinary.Node{
				{Tag: "enc_p", Content: ct},
				{Tag: "enc_iv", Content: iv},
			}}}
		}
	}
	if reqErr != nil {
		req.Err = reqErr
		s.logf("%s: media retry receipt for %s: %v", c.name, id, reqErr)
		answer = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "2"}}}
	}

	s.mu.Lock()
	if pm != nil {
		pm.retries = append(pm.retries, req)
	} else {
		s.strayRetries[id] = append(s.strayRetries[id], req)
	}
	s.notify()
	s.mu.Unlock()
	if a == nil {
		return
	}

	// The notification's id is the message's: that is how whatsmeow tells
	// which message the answer is for (events.MediaRetry.MessageID).
	rmrAttrs := waBinary.Attrs{"jid": req.Chat, "from_me": req.FromMe}
	if !req.Participant.IsEmpty() {
		rmrAttrs["participant"] = req.Participant
	}
	s.deliver(&delivery{key: notificationKey(id), id: id, to: a, node: waBinary.Node{
		Tag: "notification",
		Attrs: waBinary.Attrs{
			"from": a.jid.ToNonAD(),
			"id":   id,
			"type": "mediaretry",
			"t":    strconv.FormatInt(time.Now().Unix(), 10),
		},
		Content: append([]waBinary.Node{{Tag: "rmr", Attrs: rmrAttrs}}, answer...),
	}})
}

// openMediaRetryReceipt checks that the client's encrypted request opens
// with the media key and names the message.
func openMediaRetryReceipt(id types.MessageID, mediaKey, ciphertext, iv []byte) error {
	if len(ciphertext) == 0 || len(iv) == 0 {
		return errors.New("no <encrypt><enc_p>/<enc_iv> in the receipt")
	}
	plain, err := gcmutil.Decrypt(mediaRetryKey(mediaKey), iv, ciphertext, []byte(id))
	if err != nil {
		return fmt.Errorf("decrypt the retry request: %w", err)
	}
	var receipt waMmsRetry.ServerErrorReceipt
	if err := proto.Unmarshal(plain, &receipt); err != nil {
		return fmt.Errorf("decode the retry request: %w", err)
	}
	if receipt.GetStanzaID() != id {
		return fmt.Errorf("the retry request names message %q", receipt.GetStanzaID())
	}
	return nil
}

func sealMediaRetryNotification(id types.MessageID, mediaKey []byte, notif *waMmsRetry.MediaRetryNotification) (ciphertext, iv []byte, err error) {
	plain, err := proto.Marshal(notif)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal retry notification: %w", err)
	}
	iv = randomBytes(12)
	ciphertext, err = gcmutil.Encrypt(mediaRetryKey(mediaKey), iv, plain, []byte(id))
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt retry notification: %w", err)
	}
	return ciphertext, iv, nil
}
