package authstore

import (
	"context"
	"fmt"
	"sync"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// LIDMapCollection holds the LID↔phone-number mappings of all accounts:
// whatsmeow treats them as global facts about users, not per-device state.
// (An account must therefore never be named "lid_map".)
const LIDMapCollection = "auth_lid_map"

// LIDMap implements store.LIDStore on LIDMapCollection. Each mapping is two
// documents so that both directions are point reads by _id:
//
//	{_id: "lid:{lidUser}", pn: "{pnUser}"}
//	{_id: "pn:{pnUser}",   lid: "{lidUser}"}
//
// Without transactions the pair is written as: first delete the documents
// the new mapping replaces (a phone number's old LID, a LID's old phone
// number), then upsert both. A crash in between leaves a mapping missing,
// never a wrong one, and whatsmeow stores mappings again whenever it sees
// them. Unlike sqlstore nothing is cached: another daemon may change a
// mapping at any time.
type LIDMap struct {
	coll *mongo.Collection
	// mu serialises this process's writers, so two puts of conflicting
	// mappings cannot interleave their deletes and upserts.
	mu sync.Mutex
}

// NewLIDMap returns the LID map in db.
func NewLIDMap(db *mongo.Database) *LIDMap {
	return &LIDMap{coll: db.Collection(LIDMapCollection)}
}

type lidMapDoc struct {
	ID  string `bson:"_id"`
	LID string `bson:"lid,omitempty"`
	PN  string `bson:"pn,omitempty"`
}

func lidDocID(lidUser string) string { return "lid:" + lidUser }
func pnDocID(pnUser string) string   { return "pn:" + pnUser }

// GetLIDForPN returns the LID of a phone-number JID, keeping its device, or
// the empty JID if unknown.
func (m *LIDMap) GetLIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	if pn.Server != types.DefaultUserServer {
		return types.JID{}, fmt.Errorf("invalid GetLIDForPN call with non-PN JID %s", pn)
	}
	var doc lidMapDoc
	found, err := findByID(ctx, m.coll, pnDocID(pn.User), &doc)
	if err != nil {
		return types.JID{}, fmt.Errorf("get LID for %s: %w", pn, err)
	}
	if !found || doc.LID == "" {
		return types.JID{}, nil
	}
	return types.JID{User: doc.LID, Device: pn.Device, Server: types.HiddenUserServer}, nil
}

// GetPNForLID returns the phone-number JID of a LID, keeping its device, or
// the empty JID if unknown.
func (m *LIDMap) GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	if lid.Server != types.HiddenUserServer {
		return types.JID{}, fmt.Errorf("invalid GetPNForLID call with non-LID JID %s", lid)
	}
	var doc lidMapDoc
	found, err := findByID(ctx, m.coll, lidDocID(lid.User), &doc)
	if err != nil {
		return types.JID{}, fmt.Errorf("get phone number for %s: %w", lid, err)
	}
	if !found || doc.PN == "" {
		return types.JID{}, nil
	}
	return types.JID{User: doc.PN, Device: lid.Device, Server: types.DefaultUserServer}, nil
}

// GetManyLIDsForPNs returns the LIDs of the known phone-number JIDs among
// pns, keyed by the JID asked for and keeping its device; unknown and
// non-PN JIDs are left out.
func (m *LIDMap) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	if len(pns) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(pns))
	for _, pn := range pns {
		if pn.Server == types.DefaultUserServer {
			ids = append(ids, pnDocID(pn.User))
		}
	}
	docs, err := m.find(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("get LIDs for %d phone numbers: %w", len(pns), err)
	}
	out := make(map[types.JID]types.JID, len(docs))
	for _, pn := range pns {
		if pn.Server != types.DefaultUserServer {
			continue
		}
		if d, ok := docs[pnDocID(pn.User)]; ok && d.LID != "" {
			out[pn] = types.JID{User: d.LID, Device: pn.Device, Server: types.HiddenUserServer}
		}
	}
	return out, nil
}

// PutLIDMapping stores that lid and pn are the same user.
func (m *LIDMap) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	if lid.Server != types.HiddenUserServer || pn.Server != types.DefaultUserServer {
		return fmt.Errorf("invalid PutLIDMapping call %s/%s", lid, pn)
	}
	if err := m.put(ctx, []store.LIDMapping{{LID: lid, PN: pn}}); err != nil {
		return fmt.Errorf("put LID mapping %s/%s: %w", lid, pn, err)
	}
	return nil
}

// PutManyLIDMappings stores many mappings; invalid entries are skipped, as
// in sqlstore, and a later entry overrides an earlier one that conflicts.
func (m *LIDMap) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	valid := make([]store.LIDMapping, 0, len(mappings))
	for _, mp := range mappings {
		if mp.LID.Server == types.HiddenUserServer && mp.PN.Server == types.DefaultUserServer {
			valid = append(valid, mp)
		}
	}
	if err := m.put(ctx, valid); err != nil {
		return fmt.Errorf("put %d LID mappings: %w", len(valid), err)
	}
	return nil
}

func (m *LIDMap) put(ctx context.Context, mappings []store.LIDMapping) error {
	if len(mappings) == 0 {
		return nil
	}
	// The final one-to-one pairs, applying the mappings in order.
	lidOf := make(map[string]string) // pn user → lid user
	pnOf := make(map[string]string)  // lid user → pn user
	for _, mp := range mappings {
		l, p := mp.LID.User, mp.PN.User
		if old, ok := lidOf[p]; ok && old != l {
			delete(pnOf, old)
		}
		if old, ok := pnOf[l]; ok && old != p {
			delete(lidOf, old)
		}
		lidOf[p], pnOf[l] = l, p
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, 2*len(lidOf))
	for p, l := range lidOf {
		ids = append(ids, pnDocID(p), lidDocID(l))
	}
	existing, err := m.find(ctx, ids)
	if err != nil {
		return err
	}
	var deletes []mongo.WriteModel
	var upserts []upsertItem
	for p, l := range lidOf {
		pnDoc, hasPN := existing[pnDocID(p)]
		lidDoc, hasLID := existing[lidDocID(l)]
		if hasPN && pnDoc.LID == l && hasLID && lidDoc.PN == p {
			continue // already stored
		}
		if hasPN && pnDoc.LID != l && pnDoc.LID != "" {
			// p's old LID no longer maps to p (only if it still does).
			deletes = append(deletes, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: lidDocID(pnDoc.LID)}, {Key: "pn", Value: p}}))
		}
		if hasLID && lidDoc.PN != p && lidDoc.PN != "" {
			deletes = append(deletes, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: pnDocID(lidDoc.PN)}, {Key: "lid", Value: l}}))
		}
		upserts = append(upserts,
			upsertItem{id: pnDocID(p), set: bson.D{{Key: "lid", Value: l}}},
			upsertItem{id: lidDocID(l), set: bson.D{{Key: "pn", Value: p}}})
	}
	if err := bulkWrite(ctx, m.coll, deletes); err != nil {
		return fmt.Errorf("delete replaced mappings: %w", err)
	}
	return putMany(ctx, m.coll, upserts)
}

// find returns the documents with the given _ids, by _id.
func (m *LIDMap) find(ctx context.Context, ids []string) (map[string]lidMapDoc, error) {
	out := make(map[string]lidMapDoc, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := m.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, err
	}
	var docs []lidMapDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	for _, d := range docs {
		out[d.ID] = d
	}
	return out, nil
}

// altJIDs maps each given LID or phone-number JID (non-AD) to its other
// identity, when known, in one round trip. Other JIDs are ignored.
func (m *LIDMap) altJIDs(ctx context.Context, jids ...types.JID) (map[types.JID]types.JID, error) {
	ids := make([]string, 0, len(jids))
	for _, j := range jids {
		switch j.Server {
		case types.HiddenUserServer:
			ids = append(ids, lidDocID(j.User))
		case types.DefaultUserServer:
			ids = append(ids, pnDocID(j.User))
		}
	}
	docs, err := m.find(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up alternate JIDs: %w", err)
	}
	out := make(map[types.JID]types.JID, len(jids))
	for _, j := range jids {
		switch j.Server {
		case types.HiddenUserServer:
			if d, ok := docs[lidDocID(j.User)]; ok && d.PN != "" {
				out[j] = types.NewJID(d.PN, types.DefaultUserServer)
			}
		case types.DefaultUserServer:
			if d, ok := docs[pnDocID(j.User)]; ok && d.LID != "" {
				out[j] = types.NewJID(d.LID, types.HiddenUserServer)
			}
		}
	}
	return out, nil
}
