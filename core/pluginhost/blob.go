package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/sdk"
)

// Blobs stores plugins' blobs in the GridFS bucket "media" (media.files and
// media.chunks). A blob's ID is its GridFS file id in hex; its metadata
// records the content type and the plugin that stored it.
type Blobs struct {
	bucket *mongo.GridFSBucket
}

// NewBlobs returns the blob store on db's media bucket.
func NewBlobs(db *mongo.Database) *Blobs {
	return &Blobs{bucket: db.GridFSBucket(options.GridFSBucket().SetName(store.MediaBucket))}
}

type blobMeta struct {
	ContentType string `bson:"contentType,omitempty"`
	Plugin      string `bson:"plugin,omitempty"`
}

// Put stores r's bytes and returns the new blob's info.
func (b *Blobs) Put(ctx context.Context, plugin string, info sdk.BlobInfo, r io.Reader) (sdk.BlobInfo, error) {
	cr := &countingReader{r: r}
	opts := options.GridFSUpload().SetMetadata(blobMeta{ContentType: info.ContentType, Plugin: plugin})
	id, err := b.bucket.UploadFromStream(ctx, info.Filename, cr, opts)
	if err != nil {
		return sdk.BlobInfo{}, fmt.Errorf("put blob %q: %w", info.Filename, err)
	}
	return sdk.BlobInfo{ID: id.Hex(), Filename: info.Filename, ContentType: info.ContentType, Size: cr.n}, nil
}

// Get opens a blob for reading.
func (b *Blobs) Get(ctx context.Context, id string) (io.ReadCloser, sdk.BlobInfo, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, sdk.BlobInfo{}, fmt.Errorf("blob %q: %w", id, ErrNotFound)
	}
	ds, err := b.bucket.OpenDownloadStream(ctx, oid)
	if errors.Is(err, mongo.ErrFileNotFound) {
		return nil, sdk.BlobInfo{}, fmt.Errorf("blob %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, sdk.BlobInfo{}, fmt.Errorf("get blob %q: %w", id, err)
	}
	f := ds.GetFile()
	var meta blobMeta
	if len(f.Metadata) > 0 {
		_ = bson.Unmarshal(f.Metadata, &meta)
	}
	return ds, sdk.BlobInfo{ID: id, Filename: f.Name, ContentType: meta.ContentType, Size: f.Length}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
