package plugintest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/wildcathub/wildcat/sdk"
)

// Host is an in-memory sdk.Host. It records what the plugin sends and
// serves what the test seeded. It is safe for concurrent use.
type Host struct {
	mu       sync.Mutex
	sent     []Sent
	media    map[string][]byte
	messages map[string]*sdk.Message
	blobs    map[string]blob
	kv       map[string]kvEntry
	mediaErr map[string]error
	links    []sdk.MediaLink
	now      func() time.Time
	seq      int
}

// Sent is one message a plugin sent through the Host.
type Sent struct {
	AccountID string
	Request   *sdk.SendRequest
	MessageID string
}

type blob struct {
	info sdk.BlobInfo
	data []byte
}

type kvEntry struct {
	value   []byte
	expires time.Time
}

var _ sdk.Host = (*Host)(nil)

// NewHost returns an empty Host.
func NewHost() *Host {
	return &Host{
		media:    map[string][]byte{},
		messages: map[string]*sdk.Message{},
		blobs:    map[string]blob{},
		kv:       map[string]kvEntry{},
		mediaErr: map[string]error{},
		now:      time.Now,
	}
}

// AddMedia makes FetchMedia(accountID, messageID) return data.
func (h *Host) AddMedia(accountID, messageID string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.media[accountID+"/"+messageID] = data
}

// FailMedia makes FetchMedia(accountID, messageID) return err (nil removes
// the failure), e.g. sdk.ErrUnavailable for media WhatsApp no longer has.
func (h *Host) FailMedia(accountID, messageID string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.mediaErr, accountID+"/"+messageID)
		return
	}
	h.mediaErr[accountID+"/"+messageID] = err
}

// Links returns the LinkMedia calls so far, in order.
func (h *Host) Links() []sdk.MediaLink {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sdk.MediaLink(nil), h.links...)
}

// BlobIDs returns the ids of the stored blobs.
func (h *Host) BlobIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.blobs))
	for id := range h.blobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// AddMessage makes GetMessage(m.AccountID, m.MessageID) return m.
func (h *Host) AddMessage(m *sdk.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.messages[m.AccountID+"/"+m.MessageID] = m
}

// Sent returns the messages sent so far, in order.
func (h *Host) Sent() []Sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sent(nil), h.sent...)
}

// KV returns the plugin's stored value of key, as KVGet would.
func (h *Host) KV(key string) ([]byte, bool) {
	v, ok, _ := h.KVGet(context.Background(), key)
	return v, ok
}

// SendMessage records the request and returns a new message id.
func (h *Host) SendMessage(_ context.Context, accountID string, req *sdk.SendRequest) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	id := req.ID
	if id == "" {
		id = fmt.Sprintf("SENT%04d", h.seq)
	}
	h.sent = append(h.sent, Sent{AccountID: accountID, Request: req, MessageID: id})
	return id, nil
}

// FetchMedia returns media seeded with AddMedia.
func (h *Host) FetchMedia(_ context.Context, accountID, messageID string) (io.ReadCloser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.mediaErr[accountID+"/"+messageID]; err != nil {
		return nil, err
	}
	data, ok := h.media[accountID+"/"+messageID]
	if !ok {
		return nil, fmt.Errorf("media of %s/%s: %w", accountID, messageID, sdk.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// PutBlob keeps the blob in memory under the hex SHA-256 of its bytes, as
// the daemon does: the same bytes stored twice are kept once, with their
// first info.
func (h *Host) PutBlob(_ context.Context, info sdk.BlobInfo, r io.Reader) (sdk.BlobInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return sdk.BlobInfo{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha256.Sum256(data)
	info.ID = hex.EncodeToString(sum[:])
	info.Size = int64(len(data))
	if b, ok := h.blobs[info.ID]; ok {
		return b.info, nil
	}
	h.blobs[info.ID] = blob{info: info, data: data}
	return info, nil
}

// GetBlob returns a blob stored with PutBlob.
func (h *Host) GetBlob(_ context.Context, id string) (io.ReadCloser, sdk.BlobInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.blobs[id]
	if !ok {
		return nil, sdk.BlobInfo{}, fmt.Errorf("blob %s: %w", id, sdk.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b.data)), b.info, nil
}

// KVGet reads a key; expired keys read as absent.
func (h *Host) KVGet(_ context.Context, key string) ([]byte, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.kv[key]
	if !ok || (!e.expires.IsZero() && !h.now().Before(e.expires)) {
		return nil, false, nil
	}
	return e.value, true, nil
}

// KVSet writes a key.
func (h *Host) KVSet(_ context.Context, key string, value []byte, ttl time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := kvEntry{value: append([]byte(nil), value...)}
	if ttl > 0 {
		e.expires = h.now().Add(ttl)
	}
	h.kv[key] = e
	return nil
}

// KVDelete removes a key.
func (h *Host) KVDelete(_ context.Context, key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.kv, key)
	return nil
}

// LinkMedia records the link (see Links) and, for an archived link with a
// MediaID, sets the seeded message's MediaURL as the daemon does.
// ErrNotFound when the message was not seeded.
func (h *Host) LinkMedia(_ context.Context, l sdk.MediaLink) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.messages[l.AccountID+"/"+l.MessageID]
	if !ok {
		return fmt.Errorf("message %s/%s: %w", l.AccountID, l.MessageID, sdk.ErrNotFound)
	}
	l.Targets = append([]string(nil), l.Targets...)
	h.links = append(h.links, l)
	if l.SkippedReason == "" && l.MediaID != "" {
		c := *m // GetMessage's callers may hold m
		c.MediaURL = "/v1/media/" + l.MediaID
		h.messages[l.AccountID+"/"+l.MessageID] = &c
	}
	return nil
}

// GetMessage returns a message seeded with AddMessage.
func (h *Host) GetMessage(_ context.Context, accountID, messageID string) (*sdk.Message, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.messages[accountID+"/"+messageID]
	if !ok {
		return nil, fmt.Errorf("message %s/%s: %w", accountID, messageID, sdk.ErrNotFound)
	}
	return m, nil
}
