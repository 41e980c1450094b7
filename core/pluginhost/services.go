package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/event"
	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/sdk"
)

// The daemon's services that plugins reach through the Host service. Each is
// a narrow interface the daemon supplies; a nil one makes the matching Host
// call fail with ErrUnavailable. Return an error matching ErrNotFound
// (errors.Is) for an unknown message; mongo.ErrNoDocuments and
// session.ErrNoMedia are recognised too.

// Sender sends a message from an account (the account manager).
type Sender interface {
	Send(ctx context.Context, accountID string, req *session.SendRequest) (messageID string, err error)
}

// MediaFetcher streams the decrypted media of a stored message.
type MediaFetcher interface {
	FetchMedia(ctx context.Context, accountID, messageID string) (io.ReadCloser, error)
}

// MessageGetter looks up a stored message.
type MessageGetter interface {
	GetMessage(ctx context.Context, accountID, messageID string) (*event.Message, error)
}

// MediaLinker records what became of a stored message's media (archived:
// mediaId/mediaUrl set and a media.archived event emitted; or skipped, with
// the reason); the daemon implements it for the media archive plugin.
type MediaLinker interface {
	LinkMedia(ctx context.Context, link sdk.MediaLink) error
}

var (
	// ErrNotFound is the error services return for what does not exist.
	ErrNotFound = sdk.ErrNotFound
	// ErrUnavailable: a service is not configured, or a plugin is not
	// running (starting, restarting after a crash, stopped).
	ErrUnavailable = sdk.ErrUnavailable
)

// Services are what the host serves to plugins. DB holds the kv collection
// when KV is nil and, when Blobs is nil, the GridFS bucket "media" for blobs.
type Services struct {
	Sender   Sender
	Media    MediaFetcher
	Messages MessageGetter
	Linker   MediaLinker
	// KV is the plugins' key-value store; nil with DB set means MongoKV
	// on DB.
	KV KV
	DB *mongo.Database
	// Blobs is the media store blobs live in (the daemon's, on either
	// engine); nil means GridFS on DB.
	Blobs media.Store
	// BlobMaxBytes bounds one blob in the GridFS fallback (config.yaml's
	// media.max_bytes); DefaultBlobMaxBytes when zero.
	BlobMaxBytes int64
}

// hostServices is the sdk.Host of one plugin.
type hostServices struct {
	plugin string
	svc    Services
	kv     KV
	blobs  *Blobs
}

var _ sdk.Host = (*hostServices)(nil)

func unavailable(what string) error {
	return fmt.Errorf("%s: %w: not configured on this daemon", what, ErrUnavailable)
}

// notFound maps the daemon's "does not exist" errors onto ErrNotFound so
// they cross the wire as such.
func notFound(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	if errors.Is(err, mongo.ErrNoDocuments) || errors.Is(err, session.ErrNoMedia) || errors.Is(err, session.ErrMediaGone) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	// Media gone from WhatsApp's servers: the driver asked the phone to
	// re-upload it, so the fetch can succeed later — a temporary failure
	// on the plugin's side.
	if errors.Is(err, session.ErrMediaRetryRequested) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

func (h *hostServices) SendMessage(ctx context.Context, accountID string, req *sdk.SendRequest) (string, error) {
	if h.svc.Sender == nil {
		return "", unavailable("SendMessage")
	}
	sr, err := toSessionRequest(ctx, req, h.blobs)
	if err != nil {
		return "", err
	}
	id, err := h.svc.Sender.Send(ctx, accountID, sr)
	return id, notFound(err)
}

func (h *hostServices) FetchMedia(ctx context.Context, accountID, messageID string) (io.ReadCloser, error) {
	if h.svc.Media == nil {
		return nil, unavailable("FetchMedia")
	}
	rc, err := h.svc.Media.FetchMedia(ctx, accountID, messageID)
	return rc, notFound(err)
}

func (h *hostServices) PutBlob(ctx context.Context, info sdk.BlobInfo, r io.Reader) (sdk.BlobInfo, error) {
	if h.blobs == nil {
		return sdk.BlobInfo{}, unavailable("PutBlob")
	}
	return h.blobs.Put(ctx, h.plugin, info, r)
}

func (h *hostServices) GetBlob(ctx context.Context, id string) (io.ReadCloser, sdk.BlobInfo, error) {
	if h.blobs == nil {
		return nil, sdk.BlobInfo{}, unavailable("GetBlob")
	}
	return h.blobs.Get(ctx, id)
}

func (h *hostServices) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	if h.kv == nil {
		return nil, false, unavailable("KVGet")
	}
	return h.kv.Get(ctx, h.plugin, key)
}

func (h *hostServices) KVSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if h.kv == nil {
		return unavailable("KVSet")
	}
	return h.kv.Set(ctx, h.plugin, key, value, ttl)
}

func (h *hostServices) KVDelete(ctx context.Context, key string) error {
	if h.kv == nil {
		return unavailable("KVDelete")
	}
	return h.kv.Delete(ctx, h.plugin, key)
}

func (h *hostServices) LinkMedia(ctx context.Context, link sdk.MediaLink) error {
	if h.svc.Linker == nil {
		return unavailable("LinkMedia")
	}
	return notFound(h.svc.Linker.LinkMedia(ctx, link))
}

func (h *hostServices) GetMessage(ctx context.Context, accountID, messageID string) (*event.Message, error) {
	if h.svc.Messages == nil {
		return nil, unavailable("GetMessage")
	}
	m, err := h.svc.Messages.GetMessage(ctx, accountID, messageID)
	if err == nil && m == nil {
		err = fmt.Errorf("message %s of account %s: %w", messageID, accountID, ErrNotFound)
	}
	return m, notFound(err)
}
