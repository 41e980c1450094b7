package watest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"
)

// mediaHost is the host the media_conn answer names; the HTTP client from
// HTTPClient brings every host to this server anyway.
const mediaHost = "mmg.whatsapp.net"

const mediaMACLength = 10

func (s *Server) mediaConn() []waBinary.Node {
	return []waBinary.Node{{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth":        "watest-media-auth",
		"ttl":         "3600",
		"auth_ttl":    "21600",
		"max_buckets": "12",
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": mediaHost}}}}}
}

// serveUpload stores an encrypted upload (POST /mms/{type}/{token}) after
// checking that the token is the SHA-256 of the body, and answers with the
// URL and direct path whatsmeow puts into the message.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/mms/"), "/")
	if len(parts) != 2 || r.URL.Query().Get("auth") == "" {
		http.Error(w, "bad upload path", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	if parts[1] != base64.URLEncoding.EncodeToString(sum[:]) {
		s.logf("upload of %s: token does not match the body's SHA-256", parts[0])
		http.Error(w, "hash mismatch", http.StatusBadRequest)
		return
	}
	directPath := s.storeMedia(body)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"url":         "https://" + mediaHost + directPath,
		"direct_path": directPath,
	})
}

// storeMedia keeps an encrypted blob and returns its direct path.
func (s *Server) storeMedia(blob []byte) string {
	sum := sha256.Sum256(blob)
	path := "/v/t62.7118-24/" + hex.EncodeToString(sum[:12]) + ".enc"
	s.mu.Lock()
	s.media[path] = blob
	s.mu.Unlock()
	// Real direct paths carry a query, and whatsmeow appends "&hash=…".
	return path + "?ccb=11-4&oh=watest&oe=0"
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	blob, ok := s.media[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		s.logf("download of unknown media %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(blob)
}

// MediaInfo describes an uploaded attachment, in the fields a media message
// carries.
type MediaInfo struct {
	URL           string
	DirectPath    string
	MediaKey      []byte
	FileSHA256    []byte
	FileEncSHA256 []byte
	FileLength    uint64
}

// UploadMedia encrypts data with a fresh media key the way WhatsApp clients
// do (HKDF-expanded key, AES-CBC, truncated HMAC) and stores it, as a
// contact's phone uploading an attachment would.
func (s *Server) UploadMedia(data []byte, mediaType whatsmeow.MediaType) (MediaInfo, error) {
	mediaKey := randomBytes(32)
	iv, cipherKey, macKey := mediaKeys(mediaKey, mediaType)
	ct, err := cbcutil.Encrypt(cipherKey, iv, data)
	if err != nil {
		return MediaInfo{}, fmt.Errorf("watest: encrypt media: %w", err)
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ct)
	blob := append(ct, mac.Sum(nil)[:mediaMACLength]...)
	plainSum, encSum := sha256.Sum256(data), sha256.Sum256(blob)
	directPath := s.storeMedia(blob)
	return MediaInfo{
		URL:           "https://" + mediaHost + directPath,
		DirectPath:    directPath,
		MediaKey:      mediaKey,
		FileSHA256:    plainSum[:],
		FileEncSHA256: encSum[:],
		FileLength:    uint64(len(data)),
	}, nil
}

// DownloadMedia decrypts an attachment stored in the double (one a client
// uploaded, or UploadMedia's), checking its hashes and MAC, so a test can
// compare what a contact received with what the client sent.
func (s *Server) DownloadMedia(msg whatsmeow.DownloadableMessage) ([]byte, error) {
	path := msg.GetDirectPath()
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	s.mu.Lock()
	blob, ok := s.media[path]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("watest: no media at %q", msg.GetDirectPath())
	}
	if sum := sha256.Sum256(blob); !hmac.Equal(sum[:], msg.GetFileEncSHA256()) {
		return nil, errors.New("watest: encrypted media hash mismatch")
	}
	if len(blob) <= mediaMACLength {
		return nil, errors.New("watest: media blob too short")
	}
	iv, cipherKey, macKey := mediaKeys(msg.GetMediaKey(), whatsmeow.GetMediaType(msg))
	ct, tag := blob[:len(blob)-mediaMACLength], blob[len(blob)-mediaMACLength:]
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ct)
	if !hmac.Equal(mac.Sum(nil)[:mediaMACLength], tag) {
		return nil, errors.New("watest: media MAC mismatch")
	}
	data, err := cbcutil.Decrypt(cipherKey, iv, ct)
	if err != nil {
		return nil, fmt.Errorf("watest: decrypt media: %w", err)
	}
	if sum := sha256.Sum256(data); !hmac.Equal(sum[:], msg.GetFileSHA256()) {
		return nil, errors.New("watest: media hash mismatch")
	}
	return data, nil
}

func mediaKeys(mediaKey []byte, mediaType whatsmeow.MediaType) (iv, cipherKey, macKey []byte) {
	expanded := hkdfutil.SHA256(mediaKey, nil, []byte(mediaType), 112)
	return expanded[:16], expanded[16:48], expanded[48:80]
}

// SendImage uploads data as an image and sends it to the account to.
func (c *Contact) SendImage(ctx context.Context, to types.JID, data []byte, mimetype, caption string) (types.MessageID, error) {
	m, err := c.srv.UploadMedia(data, whatsmeow.MediaImage)
	if err != nil {
		return "", err
	}
	return c.SendMessage(ctx, to, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
		URL:           proto.String(m.URL),
		DirectPath:    proto.String(m.DirectPath),
		MediaKey:      m.MediaKey,
		FileSHA256:    m.FileSHA256,
		FileEncSHA256: m.FileEncSHA256,
		FileLength:    proto.Uint64(m.FileLength),
		Mimetype:      proto.String(mimetype),
		Caption:       optionalString(caption),
	}})
}

// SendDocument uploads data as a document and sends it to the account to.
func (c *Contact) SendDocument(ctx context.Context, to types.JID, data []byte, mimetype, fileName string) (types.MessageID, error) {
	m, err := c.srv.UploadMedia(data, whatsmeow.MediaDocument)
	if err != nil {
		return "", err
	}
	return c.SendMessage(ctx, to, &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
		URL:           proto.String(m.URL),
		DirectPath:    proto.String(m.DirectPath),
		MediaKey:      m.MediaKey,
		FileSHA256:    m.FileSHA256,
		FileEncSHA256: m.FileEncSHA256,
		FileLength:    proto.Uint64(m.FileLength),
		Mimetype:      proto.String(mimetype),
		FileName:      optionalString(fileName),
		Title:         optionalString(fileName),
	}})
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
