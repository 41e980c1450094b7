package sim

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// GroupsCollection holds the sim network's groups on MongoDB, one document
// per group ({_id: group JID}).
const GroupsCollection = "sim_groups"

// MongoGroups keeps the sim network's groups in GroupsCollection.
type MongoGroups struct {
	db *mongo.Database
}

// NewMongoGroups returns the store on db.
func NewMongoGroups(db *mongo.Database) *MongoGroups { return &MongoGroups{db: db} }

var _ GroupStore = (*MongoGroups)(nil)

func (m *MongoGroups) coll() *mongo.Collection { return m.db.Collection(GroupsCollection) }

// Groups implements GroupStore.
func (m *MongoGroups) Groups(ctx context.Context) ([]*Group, error) {
	var out []*Group
	err := m.Export(ctx, 500, func(gs []*Group) error { out = append(out, gs...); return nil })
	return out, err
}

// SaveGroup implements GroupStore.
func (m *MongoGroups) SaveGroup(ctx context.Context, g *Group) error {
	if err := m.Import(ctx, []*Group{g}); err != nil {
		return fmt.Errorf("store sim group %s: %w", g.JID, err)
	}
	return nil
}

// Count counts the stored groups (the engine-to-engine copy).
func (m *MongoGroups) Count(ctx context.Context) (int64, error) {
	n, err := m.coll().CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count sim groups: %w", err)
	}
	return n, nil
}

// Export hands every group to fn in batches, by JID.
func (m *MongoGroups) Export(ctx context.Context, batch int, fn func([]*Group) error) error {
	cur, err := m.coll().Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(int32(batch)))
	if err != nil {
		return fmt.Errorf("read sim groups: %w", err)
	}
	defer cur.Close(ctx)
	var out []*Group
	for cur.Next(ctx) {
		var g Group
		if err := cur.Decode(&g); err != nil {
			return fmt.Errorf("read sim groups: %w", err)
		}
		out = append(out, &g)
		if len(out) == batch {
			if err := fn(out); err != nil {
				return err
			}
			out = nil
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read sim groups: %w", err)
	}
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// Import stores the groups, replacing stored ones.
func (m *MongoGroups) Import(ctx context.Context, gs []*Group) error {
	for _, g := range gs {
		c := *g
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		if _, err := m.coll().ReplaceOne(ctx, bson.D{{Key: "_id", Value: g.JID}}, &c, options.Replace().SetUpsert(true)); err != nil {
			return fmt.Errorf("sim group %s: %w", g.JID, err)
		}
	}
	return nil
}
