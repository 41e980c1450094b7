package outbox

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/wildcathub/wildcat/core/store"
)

// Count counts the jobs, every state.
func (j *MongoJobs) Count(ctx context.Context) (int64, error) { return store.Count(ctx, j.b.c, nil) }

// Export hands every job to fn in batches, by id.
func (j *MongoJobs) Export(ctx context.Context, batch int, fn func([]*Job) error) error {
	return store.Export(ctx, j.b.c, nil, bson.D{{Key: "_id", Value: 1}}, batch, fn)
}

// Import stores the jobs with their ids, replacing stored ones.
func (j *MongoJobs) Import(ctx context.Context, jobs []*Job) error {
	ids, docs := make([]any, len(jobs)), make([]any, len(jobs))
	for i, x := range jobs {
		if x.Log == nil {
			x.Log = []Attempt{}
		}
		ids[i], docs[i] = x.ID, x
	}
	return store.ReplaceAll(ctx, j.b.c, ids, docs)
}
