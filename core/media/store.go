// Package media keeps media files de-duplicated by SHA-256, serves them
// back with random access, and fetches media from URLs behind an SSRF
// guard.
//
// Two engines keep the bytes behind one interface, Store:
//   - FileStore (the embedded engine): content-addressed files under the
//     data directory, their metadata in the SQLite table media;
//   - GridFS (MongoDB): the standard GridFS bucket "media".
//
// On both a file's id is the hex SHA-256 of its bytes, so storing the same
// bytes twice stores them once and answers the same id.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wildcathub/wildcat/core/bounded"
)

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

// Store keeps media files. Every method that takes an id answers
// ErrNotFound (wrapped) for one that is not stored, including ids that are
// not ValidID.
type Store interface {
	// Put stores the bytes r yields, up to MaxBytes (a *TooLargeError
	// beyond it). Bytes already stored are not written again and keep
	// their first mimetype and filename. It returns once the file is
	// durable and servable.
	Put(ctx context.Context, r io.Reader, mimetype, filename string) (*Info, error)
	// Stat describes a stored file.
	Stat(ctx context.Context, id string) (*Info, error)
	// Open returns a reader over a stored file that seeks anywhere (HTTP
	// range requests read only what they cover). The caller closes it.
	Open(ctx context.Context, id string) (*Reader, error)
	// ReadAll returns a stored file's bytes.
	ReadAll(ctx context.Context, id string) ([]byte, *Info, error)
	// Delete removes a file: it stops being servable at once. Deleting a
	// file that is not stored is not an error.
	Delete(ctx context.Context, id string) error
	// List describes up to limit stored files with ids after after (""
	// for the first), in id order: a cursor over everything stored.
	List(ctx context.Context, after string, limit int) ([]*Info, error)
	// Count is how many files are stored.
	Count(ctx context.Context) (int64, error)
	// Sweep removes what interrupted writes and deletes left behind (never
	// a servable file) and reports how many it removed.
	Sweep(ctx context.Context) (int, error)
	// MaxBytes is the largest file Put accepts.
	MaxBytes() int64
}

var idShape = bounded.MustCompile(`^[0-9a-f]+$`, 64, 64)

// ValidID reports whether id can name media (64 lower-case hex digits).
func ValidID(id string) bool { return idShape.MatchString(id) }

func notFound(id string) error { return fmt.Errorf("media %q: %w", id, ErrNotFound) }

// Reader reads one stored file: an io.ReadSeekCloser with its Info.
type Reader struct {
	Info *Info

	rs     io.ReadSeeker
	closer io.Closer // nil when there is nothing to release
}

// NewReader is a Reader over rs, for a store kept elsewhere (the media
// archive's S3 bucket); c, when not nil, is closed by Close.
func NewReader(info *Info, rs io.ReadSeeker, c io.Closer) *Reader {
	return &Reader{Info: info, rs: rs, closer: c}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) { return r.rs.Read(p) }

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) { return r.rs.Seek(offset, whence) }

// Close releases the reader.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// readAll reads a whole file through open.
func readAll(r *Reader, err error) ([]byte, *Info, error) {
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	b := make([]byte, r.Info.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, nil, fmt.Errorf("read media %s: %w", r.Info.ID, err)
	}
	return b, r.Info, nil
}
