package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Host is the daemon's services for a plugin, available in every call
// through HostFrom(ctx). Every method acts for the calling plugin: the
// key-value store is the plugin's own namespace, and messages it sends are
// recorded with source "plugin".
//
// The daemon implements Host; the SDK carries the calls over gRPC. Tests use
// plugintest.Host, an in-memory implementation.
type Host interface {
	// SendMessage sends a message from an account and returns its WhatsApp
	// message id once WhatsApp accepted it.
	SendMessage(ctx context.Context, accountID string, req *SendRequest) (messageID string, err error)
	// FetchMedia streams the decrypted media of a stored message. Close the
	// reader when done; closing early cancels the transfer. ErrNotFound when
	// the message is unknown.
	FetchMedia(ctx context.Context, accountID, messageID string) (io.ReadCloser, error)
	// PutBlob stores r's bytes (in the daemon's GridFS bucket "media", the
	// files GET /v1/media/{id} serves) and returns the blob's info. The ID is
	// the hex SHA-256 of the bytes — or, when the daemon encrypts media at
	// rest, a keyed hash of them, so use the ID returned — and storing the
	// same bytes again writes nothing and returns the same ID (the first
	// Filename and ContentType stay). info's Filename and ContentType are kept; ID and Size are
	// ignored.
	PutBlob(ctx context.Context, info BlobInfo, r io.Reader) (BlobInfo, error)
	// GetBlob streams a blob stored with PutBlob. ErrNotFound when absent.
	GetBlob(ctx context.Context, id string) (io.ReadCloser, BlobInfo, error)
	// KVGet reads a key of the plugin's key-value store; found is false
	// when the key is absent or expired.
	KVGet(ctx context.Context, key string) (value []byte, found bool, err error)
	// KVSet writes a key; ttl > 0 makes it read as absent after that long.
	KVSet(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// KVDelete removes a key; removing an absent key is not an error.
	KVDelete(ctx context.Context, key string) error
	// GetMessage looks up a stored message. ErrNotFound when absent.
	GetMessage(ctx context.Context, accountID, messageID string) (*Message, error)
	// LinkMedia records on a stored message what became of its media: with
	// link.SkippedReason empty it was archived (the message document gets
	// mediaId and mediaUrl /v1/media/{MediaID} when MediaID is set, and a
	// media.archived event is emitted); otherwise it was skipped on purpose
	// and the reason is recorded. Repeating a call changes nothing.
	// ErrNotFound when the message is absent.
	LinkMedia(ctx context.Context, link MediaLink) error
}

// MediaLink is what LinkMedia records.
type MediaLink struct {
	AccountID string
	MessageID string
	// MediaID is the blob id of the archived copy (PutBlob's), servable by
	// GET /v1/media/{MediaID}; empty when it was archived elsewhere only.
	MediaID string
	// SHA256 (hex) and Size of the archived bytes.
	SHA256 string
	Size   int64
	// Targets are where the bytes were written, e.g. ["gridfs", "dir"].
	Targets []string
	// SkippedReason, when set, says why the media was not archived.
	SkippedReason string
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	ID          string
	Filename    string
	ContentType string
	Size        int64
}

var (
	// ErrNotFound: the message, media or blob asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the service or plugin cannot answer now (not
	// configured on the daemon, process restarting, ...); try again later.
	ErrUnavailable = errors.New("unavailable")
	// ErrPanicked marks the error of a call whose handler panicked.
	ErrPanicked = errors.New("plugin panicked")
)

type ctxKey int

const (
	hostKey ctxKey = iota
	loggerKey
)

// HostFrom returns the Host of the current call. Outside a call (or in a
// test that calls a handler directly) it returns a Host whose methods fail
// with ErrUnavailable, never nil.
func HostFrom(ctx context.Context) Host {
	if h, ok := ctx.Value(hostKey).(Host); ok && h != nil {
		return h
	}
	return noHost{}
}

// WithHost returns ctx carrying h, for unit tests that call a Handler or
// Sink directly; plugintest and Serve set it for you.
func WithHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, hostKey, h)
}

// Logger returns the logger of the current call. Its lines go to the
// plugin's stderr as JSON, and the daemon writes them into its own log under
// the plugin's name with their level and fields. Outside a call it returns
// the plugin's root logger.
func Logger(ctx context.Context) hclog.Logger {
	if l, ok := ctx.Value(loggerKey).(hclog.Logger); ok && l != nil {
		return l
	}
	return rootLogger()
}

func withLogger(ctx context.Context, l hclog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// noHost is the Host outside a call.
type noHost struct{}

func (noHost) SendMessage(context.Context, string, *SendRequest) (string, error) {
	return "", errNoHost
}
func (noHost) FetchMedia(context.Context, string, string) (io.ReadCloser, error) {
	return nil, errNoHost
}
func (noHost) PutBlob(context.Context, BlobInfo, io.Reader) (BlobInfo, error) {
	return BlobInfo{}, errNoHost
}
func (noHost) GetBlob(context.Context, string) (io.ReadCloser, BlobInfo, error) {
	return nil, BlobInfo{}, errNoHost
}
func (noHost) KVGet(context.Context, string) ([]byte, bool, error)          { return nil, false, errNoHost }
func (noHost) KVSet(context.Context, string, []byte, time.Duration) error   { return errNoHost }
func (noHost) KVDelete(context.Context, string) error                       { return errNoHost }
func (noHost) GetMessage(context.Context, string, string) (*Message, error) { return nil, errNoHost }
func (noHost) LinkMedia(context.Context, MediaLink) error                   { return errNoHost }

var errNoHost = fmt.Errorf("%w: no host in this context (call it from Handle, Deliver or Configure, or use sdk.WithHost in tests)", ErrUnavailable)
