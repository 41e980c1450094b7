package whatsapp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/poll"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/session/whatsapp"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// TestExpiredMediaIsReuploadedByThePhone: media the CDN no longer has
// (404) makes DownloadMedia send the phone a media retry receipt and report
// ErrMediaRetryRequested; the phone re-uploads and answers with an
// encrypted mediaretry notification, which the driver stores; the next
// DownloadMedia follows the new direct path to the original bytes. Every
// step runs through whatsmeow's own code: Download's 404,
// SendMediaRetryReceipt's encryption, the notification's parsing and
// DecryptMediaRetryNotification.
func TestExpiredMediaIsReuploadedByThePhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testExpiredMediaIsReuploadedByThePhone(t, e) })
}

func testExpiredMediaIsReuploadedByThePhone(t *testing.T, e storetest.Engine) {
	r := newRig(t)
	r.useMediaRetries(t, e)
	s, acct := r.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dora := r.srv.Contact("15551230004")

	img := bytes.Repeat([]byte("\x89PNG old picture "), 3000)
	id, err := dora.SendImage(ctx, acct.JID().ToNonAD(), img, "image/png", "from last year")
	if err != nil {
		t.Fatal(err)
	}
	ev := r.sink.waitFor(t, "image", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
	if ev.Message.Type != event.TypeImage {
		t.Fatalf("image event: %+v", ev.Message)
	}

	if err := r.srv.ExpireMedia(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DownloadMedia(ctx, ev.Message); !errors.Is(err, session.ErrMediaRetryRequested) {
		t.Fatalf("download of expired media: %v, want ErrMediaRetryRequested", err)
	}

	// The phone got a request it could open with the message's media key,
	// naming the message and the chat it is in.
	req, err := r.srv.WaitMediaRetry(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if req.Err != nil || req.DirectPath == "" {
		t.Fatalf("the phone could not use the retry request: %+v", req)
	}
	if req.Chat != dora.JID() || req.FromMe {
		t.Fatalf("retry request names chat %s from_me=%t, want %s", req.Chat, req.FromMe, dora.JID())
	}

	// The phone's answer is stored for the next download.
	waitRetryAnswer(ctx, t, r.driver.MediaRetries, id)

	rc, err := s.DownloadMedia(ctx, ev.Message)
	if err != nil {
		t.Fatalf("download after the re-upload: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, img) {
		t.Fatalf("downloaded %d bytes, want the %d original bytes", len(data), len(img))
	}
	if n := len(r.srv.MediaRetryRequests(id)); n != 1 {
		t.Fatalf("%d media retry receipts for %s, want 1", n, id)
	}
}

// TestMediaLostOnThePhoneIsGone: when the phone answers the retry request
// that it no longer has the file either, the next download reports
// ErrMediaGone — a permanent answer — instead of asking the phone forever.
func TestMediaLostOnThePhoneIsGone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, e storetest.Engine) { testMediaLostOnThePhoneIsGone(t, e) })
}

func testMediaLostOnThePhoneIsGone(t *testing.T, e storetest.Engine) {
	r := newRig(t)
	r.useMediaRetries(t, e)
	s, acct := r.pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dora := r.srv.Contact("15551230005")
	id, err := dora.SendImage(ctx, acct.JID().ToNonAD(), bytes.Repeat([]byte("deleted "), 500), "image/png", "")
	if err != nil {
		t.Fatal(err)
	}
	ev := r.sink.waitFor(t, "image", func(ev *event.Event) bool { return ev.Message != nil && ev.Message.MessageID == id })
	if err := r.srv.LoseMedia(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DownloadMedia(ctx, ev.Message); !errors.Is(err, session.ErrMediaRetryRequested) {
		t.Fatalf("first download of expired media: %v, want ErrMediaRetryRequested", err)
	}
	waitRetryAnswer(ctx, t, r.driver.MediaRetries, id)
	if _, err := s.DownloadMedia(ctx, ev.Message); !errors.Is(err, session.ErrMediaGone) {
		t.Fatalf("download after the phone's 'not available': %v, want ErrMediaGone", err)
	}
	if n := len(r.srv.MediaRetryRequests(id)); n != 1 {
		t.Fatalf("%d media retry receipts for %s, want 1 (a gone file is not asked for again)", n, id)
	}
}

// useMediaRetries keeps the driver's media retry answers on the engine.
func (r *rig) useMediaRetries(t *testing.T, e storetest.Engine) {
	if e == storetest.SQLite {
		r.driver.MediaRetries = whatsapp.NewSQLiteMediaRetries(storetest.NewSQLite(t, whatsapp.SQLiteSchema))
	}
}

// waitRetryAnswer waits until the driver has stored the phone's answer to
// the media retry request for the message id.
func waitRetryAnswer(ctx context.Context, t *testing.T, s whatsapp.MediaRetryStore, id string) {
	t.Helper()
	poll.Until(t, wait, func() error {
		r, err := s.Get(ctx, "wa1", id)
		if err != nil {
			return err
		}
		if r == nil {
			return fmt.Errorf("no stored answer for %s yet", id)
		}
		return nil
	})
}
