package media

// The MongoDB engine's media: the GridFS bucket "media".
//
// The bucket is standard GridFS — media.files and media.chunks, the spec's
// fields and indexes (created with the other collections by store's
// EnsureSchema) — so any GridFS client reads it. It is written here rather
// than through the driver's GridFSBucket so that every read is an _id
// lookup: a file's _id is its SHA-256 (hex) and chunk n's _id is
// "{sha256}:{n}", so re-uploading the same bytes writes nothing new, and two
// concurrent uploads of the same bytes write identical documents (a
// duplicate-key error then just means "already there").

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wildcathub/wildcat/core/store"
)

// ChunkSize is GridFS's default chunk size (255 KiB).
const ChunkSize = 255 * 1024

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

// GridFS is the Store on MongoDB.
type GridFS struct {
	files, chunks *mongo.Collection
	maxBytes      int64
	now           func() time.Time
}

var _ Store = (*GridFS)(nil)

// NewGridFS returns the bucket on db; maxBytes bounds every file.
func NewGridFS(db *mongo.Database, maxBytes int64) *GridFS {
	return &GridFS{files: db.Collection(store.MediaFiles), chunks: db.Collection(store.MediaChunks), maxBytes: maxBytes, now: time.Now}
}

// MaxBytes is the largest file the store accepts.
func (s *GridFS) MaxBytes() int64 { return s.maxBytes }

// Put implements Store. The files document is written after every chunk:
// once it exists the file is complete.
func (s *GridFS) Put(ctx context.Context, r io.Reader, mimetype, filename string) (*Info, error) {
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

func (s *GridFS) file(ctx context.Context, id string) (*fileDoc, error) {
	if !ValidID(id) {
		return nil, notFound(id)
	}
	var f fileDoc
	err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&f)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read media %s: %w", id, err)
	}
	return &f, nil
}

// Stat implements Store.
func (s *GridFS) Stat(ctx context.Context, id string) (*Info, error) {
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	return f.info(), nil
}

// Open implements Store; each read fetches only the chunks it needs.
func (s *GridFS) Open(ctx context.Context, id string) (*Reader, error) {
	f, err := s.file(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Reader{Info: f.info(), rs: &gridReader{ctx: ctx, s: s, f: f, n: -1}}, nil
}

// ReadAll implements Store.
func (s *GridFS) ReadAll(ctx context.Context, id string) ([]byte, *Info, error) {
	return readAll(s.Open(ctx, id))
}

// Delete implements Store: the files document first (the file is gone for
// readers at once), then its chunks by _id.
func (s *GridFS) Delete(ctx context.Context, id string) error {
	f, err := s.file(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("delete media %s: %w", id, err)
	}
	var ids bson.A
	for i := int64(0); i*ChunkSize < f.Length; i++ {
		ids = append(ids, chunkID(id, i))
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}); err != nil {
		return fmt.Errorf("delete chunks of media %s: %w", id, err)
	}
	return nil
}

// List implements Store.
func (s *GridFS) List(ctx context.Context, after string, limit int) ([]*Info, error) {
	cur, err := s.files.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	var docs []fileDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	out := make([]*Info, len(docs))
	for i := range docs {
		out[i] = docs[i].info()
	}
	return out, nil
}

// Count implements Store.
func (s *GridFS) Count(ctx context.Context) (int64, error) {
	n, err := s.files.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count media: %w", err)
	}
	return n, nil
}

// Sweep implements Store. It removes nothing: chunks an interrupted Put
// left without their files document are never served, and the next Put of
// the same bytes writes identical ones over them; finding them would take
// a scan of every chunk.
func (s *GridFS) Sweep(context.Context) (int, error) { return 0, nil }

// gridReader seeks over one file's chunks; a seek costs nothing until the
// next Read, which fetches the chunk it lands in.
type gridReader struct {
	ctx  context.Context
	s    *GridFS
	f    *fileDoc
	pos  int64
	n    int64 // index of the chunk in data; -1 for none
	data []byte
}

func (r *gridReader) Seek(offset int64, whence int) (int64, error) {
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

func (r *gridReader) Read(p []byte) (int, error) {
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

// putAs implements engine: the bytes r yields, spooled to a temporary file,
// stored under the id known once r is read. Replacing rewrites the chunks
// and then the files document; the sealed bytes it is used for make a
// reader that meets a half-replaced file fail, never read a mix.
func (s *GridFS) putAs(ctx context.Context, r io.Reader, id func() string, mimetype, filename string, replace bool) (*Info, error) {
	tmp, err := os.CreateTemp("", "wildcat-media-*")
	if err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, r)
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	sum := id()
	if !ValidID(sum) {
		return nil, fmt.Errorf("store media: invalid id %q", sum)
	}
	cur, err := s.file(ctx, sum)
	switch {
	case err == nil && !replace:
		return cur.info(), nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool media: %w", err)
	}
	buf := make([]byte, ChunkSize)
	i := int64(0)
	for ; i*ChunkSize < n; i++ {
		k, err := io.ReadFull(tmp, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("spool media: %w", err)
		}
		c := chunkDoc{ID: chunkID(sum, i), FilesID: sum, N: int32(i), Data: buf[:k]}
		if _, err := s.chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: c.ID}}, c, options.Replace().SetUpsert(true)); err != nil {
			return nil, fmt.Errorf("store media chunk %d of %s: %w", i, sum, err)
		}
	}
	f := fileDoc{ID: sum, Length: n, ChunkSize: ChunkSize, UploadDate: s.now().UTC().Truncate(time.Millisecond), Filename: filename,
		Metadata: fileMeta{Mimetype: mimetype}}
	if cur != nil {
		// A replaced file keeps its metadata; only its bytes change. The
		// bytes putAs stores are sealed: no SHA-256 in the clear (maySeal).
		f.UploadDate, f.Filename, f.Metadata = cur.UploadDate, cur.Filename, cur.Metadata
		f.Metadata.SHA256 = ""
	}
	if _, err := s.files.ReplaceOne(ctx, bson.D{{Key: "_id", Value: sum}}, f, options.Replace().SetUpsert(true)); err != nil {
		return nil, fmt.Errorf("store media %s: %w", sum, err)
	}
	if cur != nil {
		// Chunks beyond the new end belonged to the old bytes.
		var extra bson.A
		for j := i; j*ChunkSize < cur.Length; j++ {
			extra = append(extra, chunkID(sum, j))
		}
		if len(extra) > 0 {
			if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: extra}}}}); err != nil {
				return nil, fmt.Errorf("delete old chunks of media %s: %w", sum, err)
			}
		}
	}
	return f.info(), nil
}

// setFilename implements engine.
func (s *GridFS) setFilename(ctx context.Context, id, filename string) error {
	if _, err := s.files.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "filename", Value: filename}}}}); err != nil {
		return fmt.Errorf("media %s: set file name: %w", id, err)
	}
	return nil
}

// maySeal implements engine: Put records the SHA-256 of the plaintext it
// stores, putAs (sealed bytes) none.
func (s *GridFS) maySeal(in *Info) bool { return in.SHA256 == "" }
