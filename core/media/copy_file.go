package media

import (
	"context"
	"database/sql"
	"fmt"
	"io"
)

// Restore implements Restorer.
func (s *FileStore) Restore(ctx context.Context, r io.Reader, in *Info) error {
	if err := putChecked(ctx, s, r, in); err != nil {
		return err
	}
	err := s.db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE media SET mimetype = ?, filename = ?, created = ? WHERE id = ?`,
			in.Mimetype, in.Filename, in.Uploaded.UnixMilli(), in.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("restore media %s: %w", in.ID, err)
	}
	return nil
}
