package sealing

// Sealed files (media bytes) are encrypted in fixed-size chunks so that a
// range request decrypts only the chunks it covers:
//
//	"\x00wc" 0x02 len(id) id salt(16)   header
//	chunk 0 … chunk n                   ChunkSize plaintext bytes each (the
//	                                    last may be shorter), + 16-byte tag
//	meta                                the plaintext's SHA-256, sealed
//
// Each file has its own key, derived from the key's media subkey and the
// random salt, so chunk nonces can simply count. The last chunk is sealed
// with a "final" flag, so a file cut short at a chunk boundary fails to
// open instead of reading as a shorter file.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ChunkSize is the plaintext size of one sealed chunk.
const ChunkSize = 64 << 10

const (
	verFile  = 0x02
	saltSize = 16
	tagSize  = 16
	metaSize = sha256.Size + tagSize
)

var metaNonce = bytes.Repeat([]byte{0xff}, nonceSize)

// IsSealedFile reports whether head (a file's first bytes, at least 4)
// starts a sealed file.
func IsSealedFile(head []byte) bool {
	return len(head) >= len(binMagic)+1 && string(head[:len(binMagic)]) == binMagic && head[len(binMagic)] == verFile
}

func fileAEAD(e *entry, salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, e.media, salt, "wildcat sealed file", KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(i int64) []byte {
	n := make([]byte, nonceSize)
	binary.BigEndian.PutUint64(n[4:], uint64(i))
	return n
}

func chunkAAD(final bool) []byte {
	if final {
		return []byte{1}
	}
	return []byte{0}
}

// SealedSize is the size of the sealed file of n plaintext bytes under a
// key id of idLen bytes.
func SealedSize(n int64, idLen int) int64 {
	chunks := max(1, (n+ChunkSize-1)/ChunkSize)
	return headerSize(idLen) + n + chunks*tagSize + metaSize
}

func headerSize(idLen int) int64 { return int64(len(binMagic) + 2 + idLen + saltSize) }

// FileWriter seals a file as it is written; Close writes the last chunk
// and the meta block. Sum is the plaintext's SHA-256 once closed.
type FileWriter struct {
	w    io.Writer
	aead cipher.AEAD
	buf  []byte
	i    int64
	sum  hash.Hash
	err  error
}

// NewFileWriter starts a sealed file on w under the active key.
func (k *Keyring) NewFileWriter(w io.Writer) (*FileWriter, error) {
	if !k.Enabled() {
		return nil, errors.New("sealing: no active key")
	}
	e := k.active
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal file: %w", err)
	}
	aead, err := fileAEAD(e, salt)
	if err != nil {
		return nil, err
	}
	hdr := append([]byte(binMagic), verFile, byte(len(e.id)))
	hdr = append(append(hdr, e.id...), salt...)
	if _, err := w.Write(hdr); err != nil {
		return nil, fmt.Errorf("seal file: %w", err)
	}
	return &FileWriter{w: w, aead: aead, buf: make([]byte, 0, ChunkSize), sum: sha256.New()}, nil
}

// Write implements io.Writer.
func (f *FileWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	f.sum.Write(p)
	n := len(p)
	for len(p) > 0 {
		if len(f.buf) == ChunkSize {
			// More follows, so this chunk is not the last.
			if f.err = f.flush(false); f.err != nil {
				return 0, f.err
			}
		}
		k := copy(f.buf[len(f.buf):ChunkSize], p)
		f.buf = f.buf[:len(f.buf)+k]
		p = p[k:]
	}
	return n, nil
}

func (f *FileWriter) flush(final bool) error {
	out := f.aead.Seal(nil, chunkNonce(f.i), f.buf, chunkAAD(final))
	f.i++
	f.buf = f.buf[:0]
	if _, err := f.w.Write(out); err != nil {
		return fmt.Errorf("seal file: %w", err)
	}
	return nil
}

// Close writes the last chunk and the meta block; it does not close the
// underlying writer.
func (f *FileWriter) Close() error {
	if f.err != nil {
		return f.err
	}
	if f.err = f.flush(true); f.err != nil {
		return f.err
	}
	meta := f.aead.Seal(nil, metaNonce, f.sum.Sum(nil), []byte("meta"))
	if _, err := f.w.Write(meta); err != nil {
		f.err = fmt.Errorf("seal file: %w", err)
		return f.err
	}
	f.err = errors.New("sealing: file writer closed")
	return nil
}

// SHA256 is the plaintext's SHA-256 (after Close).
func (f *FileWriter) SHA256() []byte { return f.sum.Sum(nil) }

// FileReader reads a sealed file's plaintext at random: a read decrypts
// only the chunks it covers.
type FileReader struct {
	r      io.ReaderAt
	aead   cipher.AEAD
	keyID  string
	hdr    int64
	chunks int64
	size   int64 // plaintext
	pos    int64
	cur    int64 // index of the chunk in plain, -1 for none
	plain  []byte
	sha    []byte
}

// OpenFile opens the sealed file of size bytes that r reads.
func (k *Keyring) OpenFile(r io.ReaderAt, size int64) (*FileReader, error) {
	head := make([]byte, len(binMagic)+2+maxKeyIDSize+saltSize)
	n, err := r.ReadAt(head[:min(int64(len(head)), size)], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("open sealed file: %w", err)
	}
	head = head[:n]
	if !IsSealedFile(head) || len(head) < len(binMagic)+2 {
		return nil, fmt.Errorf("%w: not a sealed file", ErrMalformed)
	}
	idLen := int(head[len(binMagic)+1])
	if len(head) < int(headerSize(idLen)) {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	id := string(head[len(binMagic)+2 : len(binMagic)+2+idLen])
	e, err := k.lookup(id)
	if err != nil {
		return nil, err
	}
	salt := head[len(binMagic)+2+idLen : headerSize(idLen)]
	aead, err := fileAEAD(e, salt)
	if err != nil {
		return nil, err
	}
	hdr := headerSize(idLen)
	body := size - hdr - metaSize
	if body < tagSize {
		return nil, fmt.Errorf("key %q: %w: truncated file", id, ErrMalformed)
	}
	chunks := (body + ChunkSize + tagSize - 1) / (ChunkSize + tagSize)
	fr := &FileReader{r: r, aead: aead, keyID: id, hdr: hdr, chunks: chunks, size: body - chunks*tagSize, cur: -1}
	meta := make([]byte, metaSize)
	if _, err := r.ReadAt(meta, size-metaSize); err != nil {
		return nil, fmt.Errorf("open sealed file: %w", err)
	}
	if fr.sha, err = aead.Open(nil, metaNonce, meta, []byte("meta")); err != nil {
		return nil, fmt.Errorf("key %q: %w", id, ErrAuth)
	}
	return fr, nil
}

// Size is the plaintext's length.
func (f *FileReader) Size() int64 { return f.size }

// SHA256 is the plaintext's SHA-256 as sealed in the file.
func (f *FileReader) SHA256() []byte { return f.sha }

// KeyID is the id of the key the file is sealed under.
func (f *FileReader) KeyID() string { return f.keyID }

func (f *FileReader) load(i int64) error {
	if i == f.cur {
		return nil
	}
	ct := make([]byte, ChunkSize+tagSize)
	off := f.hdr + i*(ChunkSize+tagSize)
	final := i == f.chunks-1
	if final {
		ct = ct[:f.size-i*ChunkSize+tagSize]
	}
	if _, err := f.r.ReadAt(ct, off); err != nil {
		return fmt.Errorf("read sealed chunk %d: %w", i, err)
	}
	p, err := f.aead.Open(ct[:0], chunkNonce(i), ct, chunkAAD(final))
	if err != nil {
		return fmt.Errorf("chunk %d under key %q: %w", i, f.keyID, ErrAuth)
	}
	f.cur, f.plain = i, p
	return nil
}

// ReadAt implements io.ReaderAt.
func (f *FileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("sealing: negative offset")
	}
	n := 0
	for n < len(p) {
		if off >= f.size {
			return n, io.EOF
		}
		i := off / ChunkSize
		if err := f.load(i); err != nil {
			return n, err
		}
		k := copy(p[n:], f.plain[off-i*ChunkSize:])
		n += k
		off += int64(k)
	}
	return n, nil
}

// Read implements io.Reader.
func (f *FileReader) Read(p []byte) (int, error) {
	if f.pos >= f.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), f.size-f.pos)]
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (f *FileReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = f.size + offset
	default:
		return 0, errors.New("sealing: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("sealing: negative position")
	}
	f.pos = abs
	return abs, nil
}
