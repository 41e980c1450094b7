// Package media keeps media files in the GridFS bucket "media", de-duplicated
// by SHA-256, serves them back with random access, and fetches media from
// URLs behind an SSRF guard.
//
// The bucket is standard GridFS — media.files and media.chunks, the spec's
// fields and indexes — so any GridFS client reads it. It is written here
// rather than through the driver's GridFSBucket for one reason: the driver
// reads chunks with find({files_id}) sorted by n, which the embedded engine
// answers by scanning every chunk of every file. Here a file's _id is its
// SHA-256 (hex) and chunk n's _id is "{sha256}:{n}", so every read is an
// _id lookup on either engine, re-uploading the same bytes writes nothing
// new, and two concurrent uploads of the same bytes write identical
// documents (a duplicate-key error then just means "already there").
package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/store"
)

// ChunkSize is GridFS's default chunk size (255 KiB).
const ChunkSize = 255 * 1024

// Errors callers decide by.
var (
	// ErrNotFound: no media with that id.
	ErrNotFound = errors.New("media not found")
	// ErrTooLarge: the bytes exceed the configured maximum.
	ErrTooLarge = errors.New("media too large")
)

// TooLargeError carries the limit that was exceeded.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string { return fmt.Sprintf("media exceeds %d bytes", e.Limit) }
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Info describes one stored file.
type Info struct {
	// ID is the SHA-256 of the bytes, hex: the mediaId.
	ID       string
	SHA256   string
	Size     int64
	Mimetype string
	Filename string
	Uploaded time.Time
}

// fileDoc is a media.files document (GridFS spec fields).
type fileDoc struct {
	ID         string    `bson:"_id"`
	Length     int64     `bson:"length"`
	ChunkSize  int32     `bson:"chunkSize"`
	UploadDate time.Time `bson:"uploadDate"`
	Filename   string    `bson:"filename"`
	Metadata   fileMeta  `bson:"metadata"`
}

type fileMeta struct {
	Mimetype string `bson:"mimetype"`
	SHA256   string `bson:"sha256"`
}

type chunkDoc struct {
	ID      string `bson:"_id"`
	FilesID string `bson:"files_id"`
	N       int32  `bson:"n"`
	Data    []byte `bson:"data"`
}

func (f *fileDoc) info() *Info {
	return &Info{ID: f.ID, SHA256: f.Metadata.SHA256, Size: f.Length, Mimetype: f.Metadata.Mimetype, Filename: f.Filename, Uploaded: f.UploadDate}
}

func chunkID(fileID string, n int64) string { return fileID + ":" + strconv.FormatInt(n, 10) }

var idShape = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidID reports whether id can name media (64 lower-case hex digits).
func ValidID(id string) bool { return idShape.MatchString(id) }

// Store reads and writes the media bucket.
type Store struct {
	files, chunks *mongo.Collection
	maxBytes      int64
	now           func() time.Time
}

// NewStore returns the bucket on db; maxBytes bounds every file.
func NewStore(db *mongo.Database, maxBytes int64) *Store {
	return &Store{files: db.Collection(store.MediaFiles), chunks: db.Collection(store.MediaChunks), maxBytes: maxBytes, now: time.Now}
}

// MaxBytes is the largest file the store accepts.
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// Put stores the bytes r yields, up to the maximum size (a *TooLargeError
// beyond it). Bytes already stored are not written again; their first
// mimetype and filename stay.
func (s *Store) Put(ctx context.Context, r io.Reader, mimetype, filename string) (*Info, error) {
	// The id is the hash of the whole content, known only at its end, so
	// the bytes are spooled to a temporary file first (media can be tens of
	// megabytes; memory is not the place).
	tmp, err := os.CreateTemp("", "wildcat-media-*")
	if err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, s.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	if n > s.maxBytes {
		return nil, &TooLargeError{Limit: s.maxBytes}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if f, err := s.file(ctx, sum); err == nil {
		return f.info(), nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	buf := make([]byte, ChunkSize)
	for i := int64(0); i*ChunkSize < n; i++ {
		k, err := io.ReadFull(tmp, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("spool media: %w", err)
		}
		c := chunkDoc{ID: chunkID(sum, i), FilesID: sum, N: int32(i), Data: buf[:k]}
		if _, err := s.chunks.InsertOne(ctx, c); err != nil && !store.IsDuplicateKey(err) {
			return nil, fmt.Errorf("store media chunk %d of %s: %w", i, sum, err)
		}
	}
	// The files document goes last: once it exists the file is complete.
	f := fileDoc{ID: sum, Length: n, ChunkSize: ChunkSize, UploadDate: s.now().UTC().Truncate(time.Millisecond), Filename: filename,
		Metadata: fileMeta{Mimetype: mimetype, SHA256: sum}}
	if _, err := s.files.InsertOne(ctx, f); err != nil {
		if !store.IsDuplicateKey(err) {
			return nil, fmt.Errorf("store media %s: %w", sum, err)
		}
		// The same bytes arrived concurrently; theirs is as good as ours.
		if cur, err := s.file(ctx, sum); err == nil {
			return cur.info(), nil
		}
	}
	return f.info(), nil
}

func (s *Store) file(ctx context.Context, id string) (*fileDoc, error) {
	var f fileDoc
	err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&f)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("media %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read media %s: %w", id, err)
	}
	return &f, nil
}

// Stat describes a stored file.
func (s *Store) Stat(ctx context.Context, id string) (*Info, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("media %q: %w", id, ErrNotFound)
	}
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.info(), nil
}

// Open returns a reader over a stored file that can seek anywhere (HTTP
// range requests); each read fetches only the chunks it needs.
func (s *Store) Open(ctx context.Context, id string) (*Reader, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("media %q: %w", id, ErrNotFound)
	}
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Reader{ctx: ctx, s: s, f: f, Info: f.info(), n: -1}, nil
}

// ReadAll returns a stored file's bytes.
func (s *Store) ReadAll(ctx context.Context, id string) ([]byte, *Info, error) {
	r, err := s.Open(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, r.Info.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, fmt.Errorf("read media %s: %w", id, err)
	}
	return b, r.Info, nil
}

// Reader is an io.ReadSeeker over one stored file.
type Reader struct {
	Info *Info

	ctx  context.Context
	s    *Store
	f    *fileDoc
	pos  int64
	n    int64 // index of the chunk in data; -1 for none
	data []byte
}

// Seek implements io.Seeker; it costs nothing until the next Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.f.Length + offset
	default:
		return 0, errors.New("media: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("media: negative position")
	}
	r.pos = abs
	return abs, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.f.Length {
		return 0, io.EOF
	}
	size := int64(r.f.ChunkSize)
	n := r.pos / size
	if n != r.n {
		var c chunkDoc
		if err := r.s.chunks.FindOne(r.ctx, bson.D{{Key: "_id", Value: chunkID(r.f.ID, n)}}).Decode(&c); err != nil {
			return 0, fmt.Errorf("read chunk %d of media %s: %w", n, r.f.ID, err)
		}
		want := min(size, r.f.Length-n*size)
		if int64(len(c.Data)) != want {
			return 0, fmt.Errorf("media %s: chunk %d has %d bytes, want %d", r.f.ID, n, len(c.Data), want)
		}
		r.n, r.data = n, c.Data
	}
	k := copy(p, r.data[r.pos-n*size:])
	r.pos += int64(k)
	return k, nil
}
