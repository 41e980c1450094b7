package media

import (
	"context"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Restore implements Restorer.
func (s *GridFS) Restore(ctx context.Context, r io.Reader, in *Info) error {
	if err := putChecked(ctx, s, r, in); err != nil {
		return err
	}
	_, err := s.files.UpdateOne(ctx, bson.D{{Key: "_id", Value: in.ID}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "filename", Value: in.Filename},
		{Key: "uploadDate", Value: in.Uploaded.UTC()},
		{Key: "metadata.mimetype", Value: in.Mimetype},
	}}})
	if err != nil {
		return fmt.Errorf("restore media %s: %w", in.ID, err)
	}
	return nil
}
