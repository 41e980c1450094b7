package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/session"
)

// downloadable finds the media part of a message, wrappers removed.
func downloadable(m *waE2E.Message) whatsmeow.DownloadableMessage {
	inner, _ := unwrap(m)
	switch {
	case inner.GetImageMessage() != nil:
		return inner.GetImageMessage()
	case inner.GetVideoMessage() != nil:
		return inner.GetVideoMessage()
	case inner.GetPtvMessage() != nil:
		return inner.GetPtvMessage()
	case inner.GetAudioMessage() != nil:
		return inner.GetAudioMessage()
	case inner.GetDocumentMessage() != nil:
		return inner.GetDocumentMessage()
	case inner.GetStickerMessage() != nil:
		return inner.GetStickerMessage()
	}
	return nil
}

type sized interface{ GetFileLength() uint64 }

// DownloadMedia implements session.Session.
func (s *Session) DownloadMedia(ctx context.Context, msg *event.Message) (io.ReadCloser, error) {
	if msg == nil || len(msg.Raw) == 0 {
		return nil, session.ErrNoMedia
	}
	var m waE2E.Message
	if err := proto.Unmarshal(msg.Raw, &m); err != nil {
		return nil, fmt.Errorf("decode raw message %s: %w", msg.MessageID, err)
	}
	d := downloadable(&m)
	if d == nil {
		return nil, session.ErrNoMedia
	}
	s.mu.Lock()
	cli := s.cli
	s.mu.Unlock()
	if cli == nil {
		return nil, fmt.Errorf("download media of %s: %w (not connected)", msg.MessageID, session.ErrWrongState)
	}

	var data []byte
	path, gone := s.retriedPath(ctx, msg.MessageID, d.GetMediaKey())
	if gone {
		return nil, fmt.Errorf("download media of %s: %w", msg.MessageID, session.ErrMediaGone)
	}
	var err error
	if path != "" {
		size := -1
		if sz, ok := d.(sized); ok {
			size = int(sz.GetFileLength())
		}
		data, err = cli.DownloadMediaWithPath(ctx, path, d.GetFileEncSHA256(), d.GetFileSHA256(), d.GetMediaKey(), size, whatsmeow.GetMediaType(d), "")
	} else {
		data, err = cli.Download(ctx, d)
	}
	switch {
	case err == nil:
		return io.NopCloser(bytes.NewReader(data)), nil
	case errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404), errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410):
		if rerr := s.requestReupload(ctx, cli, msg, d.GetMediaKey()); rerr != nil {
			return nil, fmt.Errorf("media of %s expired and the re-upload request failed: %w", msg.MessageID, rerr)
		}
		return nil, fmt.Errorf("download media of %s: %w", msg.MessageID, session.ErrMediaRetryRequested)
	}
	return nil, fmt.Errorf("download media of %s: %w", msg.MessageID, err)
}

// requestReupload asks the phone to upload expired media again; its answer
// arrives later as events.MediaRetry.
func (s *Session) requestReupload(ctx context.Context, cli *whatsmeow.Client, msg *event.Message, mediaKey []byte) error {
	chat, err := types.ParseJID(msg.ChatID)
	if err != nil {
		return fmt.Errorf("chat %q: %w", msg.ChatID, err)
	}
	sender, _ := types.ParseJID(msg.From)
	info := &types.MessageInfo{
		ID: msg.MessageID,
		MessageSource: types.MessageSource{
			Chat: chat, Sender: sender, IsFromMe: msg.FromMe, IsGroup: chat.Server == types.GroupServer,
		},
	}
	return cli.SendMediaRetryReceipt(ctx, info, mediaKey)
}

// onMediaRetry stores the phone's answer for the next download attempt.
func (s *Session) onMediaRetry(ctx context.Context, evt *events.MediaRetry) {
	if s.d.MediaRetries == nil {
		return
	}
	r := MediaRetry{Ciphertext: evt.Ciphertext, IV: evt.IV, At: evt.Timestamp}
	if evt.Error != nil {
		r.ErrorCode = evt.Error.Code
	}
	if err := s.d.MediaRetries.Put(ctx, s.acct.ID, evt.MessageID, r); err != nil {
		s.log.Error("store media retry answer", slog.String("message_id", evt.MessageID), slog.Any("error", err))
	}
}

// retriedPath returns the direct path the phone re-uploaded to, or "";
// gone is true when the phone answered that it does not have the media (so
// asking again is pointless).
func (s *Session) retriedPath(ctx context.Context, messageID string, mediaKey []byte) (path string, gone bool) {
	if s.d.MediaRetries == nil {
		return "", false
	}
	doc, err := s.d.MediaRetries.Get(ctx, s.acct.ID, messageID)
	if err != nil {
		s.log.Warn("read media retry answer", slog.String("message_id", messageID), slog.Any("error", err))
		return "", false
	}
	if doc == nil {
		return "", false
	}
	evt := &events.MediaRetry{Ciphertext: doc.Ciphertext, IV: doc.IV, MessageID: messageID}
	if doc.ErrorCode != 0 {
		evt.Error = &events.MediaRetryError{Code: doc.ErrorCode}
	}
	notif, err := whatsmeow.DecryptMediaRetryNotification(evt, mediaKey)
	if errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone) || notif.GetResult() == waMmsRetry.MediaRetryNotification_NOT_FOUND {
		return "", true
	}
	if err != nil || notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS {
		// Anything else may pass: the next download asks the phone again.
		s.log.Warn("phone could not re-upload media", slog.String("message_id", messageID), slog.Any("error", err), slog.String("result", notif.GetResult().String()))
		return "", false
	}
	return notif.GetDirectPath(), false
}
