package media

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/wildcathub/wildcat/core/sealing"
)

// For the engine-to-engine copy (wildcatd store copy), each Store can take
// a file with its metadata as the source stored it (copy_file.go,
// copy_gridfs.go): its upload time, mimetype and filename are kept rather
// than those of a new upload.

// Restorer is a Store that can take a copied file.
type Restorer interface {
	Store
	// Restore stores the bytes r yields as the file in describes and sets
	// its metadata to in's, replacing those of a stored file with the same
	// id. It fails when the bytes do not hash to in.ID.
	Restore(ctx context.Context, r io.Reader, in *Info) error
}

var (
	_ Restorer = (*FileStore)(nil)
	_ Restorer = (*GridFS)(nil)
)

func putChecked(ctx context.Context, s engine, r io.Reader, in *Info) error {
	// Sealed bytes (encryption at rest) are copied as they are, under
	// their id, an HMAC that only the key can check: a file that was
	// altered fails to open rather than reading wrong.
	br := bufio.NewReader(r)
	if head, _ := br.Peek(5); sealing.IsSealedFile(head) {
		_, err := s.putAs(ctx, br, func() string { return in.ID }, in.Mimetype, in.Filename, true)
		return err
	}
	r = br
	got, err := s.Put(ctx, r, in.Mimetype, in.Filename)
	if err != nil {
		return err
	}
	if got.ID != in.ID {
		return fmt.Errorf("media %s: the bytes read hash to %s", in.ID, got.ID)
	}
	return nil
}
