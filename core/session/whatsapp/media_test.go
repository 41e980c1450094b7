package whatsapp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/netguard"
	"github.com/wildcathub/wildcat/core/session"
)

// encryptMedia does what a WhatsApp sender does to an attachment: keys from
// HKDF over the media key, AES-CBC, a truncated HMAC appended.
func encryptMedia(t *testing.T, plain []byte, mt whatsmeow.MediaType) (file, mediaKey []byte) {
	t.Helper()
	mediaKey = make([]byte, 32)
	_, _ = rand.Read(mediaKey)
	expanded := make([]byte, 112)
	if _, err := io.ReadFull(hkdf.New(sha256.New, mediaKey, nil, []byte(mt)), expanded); err != nil {
		t.Fatal(err)
	}
	iv, cipherKey, macKey := expanded[:16], expanded[16:48], expanded[48:80]
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(cipherKey)
	if err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ct)
	return append(ct, mac.Sum(nil)[:10]...), mediaKey
}

// mediaSession is a Session with a real, unconnected whatsmeow client whose
// media HTTP client reaches srv.
func mediaSession(t *testing.T, srv *httptest.Server) *Session {
	t.Helper()
	d := &Driver{Devices: func(string) DeviceStore { return nil }}
	ss, _ := d.Open(context.Background(), session.Account{ID: "acme"}, session.SinkFunc(func(context.Context, *event.Event) error { return nil }))
	s := ss.(*Session)
	s.cli = whatsmeow.NewClient(&store.Device{}, nil)
	s.cli.SetMediaHTTPClient(srv.Client())
	return s
}

func storedImage(t *testing.T, url string, file, mediaKey, plain []byte) *event.Message {
	t.Helper()
	encSum, plainSum := sha256.Sum256(file), sha256.Sum256(plain)
	ev, err := NormalizeMessage("acme", &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: types.NewJID("15551234567", types.DefaultUserServer), Sender: types.NewJID("15551234567", types.DefaultUserServer)},
			ID:            "IMG1", Timestamp: time.Unix(1764000000, 0),
		},
		Message: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: proto.String(url), Mimetype: proto.String("image/png"), MediaKey: mediaKey,
			FileEncSHA256: encSum[:], FileSHA256: plainSum[:], FileLength: proto.Uint64(uint64(len(plain))),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ev.Message
}

// TestDownloadDecryptsMedia is the media round trip: ciphertext made with
// WhatsApp's scheme, served over HTTP, downloaded and decrypted by the
// driver's code into the original bytes.
func TestDownloadDecryptsMedia(t *testing.T) {
	plain := bytes.Repeat([]byte("\x89PNG wildcat "), 5000)
	file, key := encryptMedia(t, plain, whatsmeow.MediaImage)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/media/img1.enc" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(file)
	}))
	defer srv.Close()
	s := mediaSession(t, srv)

	rc, err := s.DownloadMedia(context.Background(), storedImage(t, srv.URL+"/media/img1.enc", file, key, plain))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, plain) {
		t.Fatalf("decrypted %d bytes, want the %d original bytes", len(got), len(plain))
	}

	// A tampered file fails its MAC and is never handed out.
	bad := append([]byte{}, file...)
	bad[0] ^= 0xff
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(bad) })
	if _, err := s.DownloadMedia(context.Background(), storedImage(t, srv.URL+"/media/img1.enc", file, key, plain)); err == nil {
		t.Fatal("tampered media accepted")
	}
}

func TestDownloadExpiredMediaAsksForReupload(t *testing.T) {
	plain := []byte("gone")
	file, key := encryptMedia(t, plain, whatsmeow.MediaImage)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer srv.Close()
	s := mediaSession(t, srv)
	_, err := s.DownloadMedia(context.Background(), storedImage(t, srv.URL+"/x", file, key, plain))
	// Unconnected, the retry request itself cannot be sent; the error says
	// both what happened and that the re-upload was attempted.
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "re-upload") {
		t.Fatalf("got %v", err)
	}
}

func TestDownloadWithoutMedia(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	s := mediaSession(t, srv)
	ev, err := NormalizeMessage("acme", &events.Message{
		Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: types.NewJID("1555", types.DefaultUserServer)}, ID: "T1"},
		Message: &waE2E.Message{Conversation: proto.String("just text")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*event.Message{nil, {MessageID: "x"}, ev.Message} {
		if _, err := s.DownloadMedia(context.Background(), m); !errors.Is(err, session.ErrNoMedia) {
			t.Errorf("got %v, want ErrNoMedia", err)
		}
	}
}

// TestMediaURLCannotReachPrivateAddresses: a media message names its own
// download URL; by default the driver downloads through the SSRF guard, so
// a contact cannot make the daemon request its own network.
func TestMediaURLCannotReachPrivateAddresses(t *testing.T) {
	reached := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} }))
	defer srv.Close()
	d := &Driver{Devices: func(string) DeviceStore { return nil }}
	ss, _ := d.Open(context.Background(), session.Account{ID: "acme"}, session.SinkFunc(func(context.Context, *event.Event) error { return nil }))
	s := ss.(*Session)
	s.cli = whatsmeow.NewClient(&store.Device{}, nil)
	s.cli.SetMediaHTTPClient(d.mediaClient())

	plain := []byte("secret")
	file, key := encryptMedia(t, plain, whatsmeow.MediaImage)
	_, err := s.DownloadMedia(context.Background(), storedImage(t, srv.URL+"/latest/meta-data", file, key, plain))
	if !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("download from %s: %v, want the SSRF guard's refusal", srv.URL, err)
	}
	select {
	case <-reached:
		t.Fatal("the private address was requested")
	default:
	}
}
