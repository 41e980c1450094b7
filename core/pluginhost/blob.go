package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/wildcathub/wildcat/core/media"
	"github.com/wildcathub/wildcat/sdk"
)

// DefaultBlobMaxBytes bounds one blob when Services.BlobMaxBytes is zero:
// the default of config.yaml's media.max_bytes.
const DefaultBlobMaxBytes = 64 << 20

// Blobs stores plugins' blobs in the media store, the very store GET
// /v1/media/{mediaId} serves: a blob's ID is the hex SHA-256 of its bytes
// (an HMAC of them when media is encrypted at rest, see media.Sealed), so
// storing the same bytes twice writes nothing new and returns the same ID,
// and every blob is servable as media.
type Blobs struct {
	store media.Store
}

// NewBlobs returns the blob store on a media store, whose MaxBytes bounds
// one blob.
func NewBlobs(s media.Store) *Blobs { return &Blobs{store: s} }

// blobStore is the media store blobs live in; nil when there is none.
func (s Services) blobStore() *Blobs {
	switch {
	case s.Blobs != nil:
		return NewBlobs(s.Blobs)
	case s.DB != nil:
		limit := s.BlobMaxBytes
		if limit <= 0 {
			limit = DefaultBlobMaxBytes
		}
		return NewBlobs(media.NewGridFS(s.DB, limit))
	}
	return nil
}

// Put stores r's bytes and returns the blob's info. plugin is not recorded:
// a blob is shared by every holder of the same bytes.
func (b *Blobs) Put(ctx context.Context, plugin string, info sdk.BlobInfo, r io.Reader) (sdk.BlobInfo, error) {
	in, err := b.store.Put(ctx, r, info.ContentType, info.Filename)
	if err != nil {
		return sdk.BlobInfo{}, fmt.Errorf("put blob %q of plugin %s: %w", info.Filename, plugin, err)
	}
	return blobInfo(in), nil
}

// Get opens a blob for reading.
func (b *Blobs) Get(ctx context.Context, id string) (io.ReadCloser, sdk.BlobInfo, error) {
	rd, err := b.store.Open(ctx, id)
	if errors.Is(err, media.ErrNotFound) {
		return nil, sdk.BlobInfo{}, fmt.Errorf("blob %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, sdk.BlobInfo{}, fmt.Errorf("get blob %q: %w", id, err)
	}
	return rd, blobInfo(rd.Info), nil
}

func blobInfo(in *media.Info) sdk.BlobInfo {
	return sdk.BlobInfo{ID: in.ID, Filename: in.Filename, ContentType: in.Mimetype, Size: in.Size}
}
