package authstore

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

type contactDoc struct {
	JID           string `bson:"jid"`
	FirstName     string `bson:"firstName"`
	FullName      string `bson:"fullName"`
	PushName      string `bson:"pushName"`
	BusinessName  string `bson:"businessName"`
	RedactedPhone string `bson:"redactedPhone"`
}

func (d *contactDoc) info() types.ContactInfo {
	return types.ContactInfo{
		Found:         true,
		FirstName:     d.FirstName,
		FullName:      d.FullName,
		PushName:      d.PushName,
		BusinessName:  d.BusinessName,
		RedactedPhone: d.RedactedPhone,
	}
}

func contactID(jid types.JID) string { return "contact:" + jid.String() }

func contactSet(jid types.JID, fields ...bson.E) bson.D {
	return append(bson.D{{Key: "kind", Value: kindContact}, {Key: "jid", Value: jid.String()}}, fields...)
}

// PutPushName stores a contact's push name and reports whether it changed
// and what it was before.
func (s *Store) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	changed, prev, err := s.putNameField(ctx, user, "pushName", pushName)
	if err != nil {
		return false, "", fmt.Errorf("put push name of %s: %w", user, err)
	}
	return changed, prev, nil
}

// PutBusinessName stores a contact's verified business name and reports
// whether it changed and what it was before.
func (s *Store) PutBusinessName(ctx context.Context, user types.JID, businessName string) (bool, string, error) {
	changed, prev, err := s.putNameField(ctx, user, "businessName", businessName)
	if err != nil {
		return false, "", fmt.Errorf("put business name of %s: %w", user, err)
	}
	return changed, prev, nil
}

// putNameField sets one name field of a contact and returns the previous
// value if it differed. It is one atomic command instead of sqlstore's
// read-compare-write with a cache: the filter matches only a document whose
// field differs, and the document is returned as it was before the update.
// (The lock is still needed: see contactMu.)
func (s *Store) putNameField(ctx context.Context, user types.JID, field, value string) (bool, string, error) {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	id := contactID(user)
	filter := bson.D{{Key: "_id", Value: id}, {Key: field, Value: bson.D{{Key: "$ne", Value: value}}}}
	update := bson.D{{Key: "$set", Value: contactSet(user, bson.E{Key: field, Value: value})}}
	// Setting a name to "" never creates a contact: an unknown contact's
	// name already is "" (sqlstore reports no change either).
	opts := options.FindOneAndUpdate().SetReturnDocument(options.Before).SetUpsert(value != "")
	var before bson.M
	err := s.coll.FindOneAndUpdate(ctx, filter, update, opts).Decode(&before)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		// With upsert: no contact existed and one was created. Without:
		// nothing to clear.
		return value != "", "", nil
	case onlyDuplicates(err):
		// The contact exists and already has this value.
		return false, "", nil
	case err != nil:
		return false, "", err
	}
	prev, _ := before[field].(string)
	if prev == value { // the field was absent and value is ""
		return false, "", nil
	}
	return true, prev, nil
}

// PutContactName stores a contact's names from the address book. whatsmeow
// passes the first name before the full name (the interface's parameter
// names say otherwise; sqlstore follows the caller).
func (s *Store) PutContactName(ctx context.Context, user types.JID, firstName, fullName string) error {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	err := s.upsert(ctx, contactID(user), contactSet(user,
		bson.E{Key: "firstName", Value: firstName},
		bson.E{Key: "fullName", Value: fullName}))
	if err != nil {
		return fmt.Errorf("put contact name of %s: %w", user, err)
	}
	return nil
}

// PutAllContactNames stores the names of many contacts (an app-state
// sync of the address book). A contact listed twice gets its last entry.
func (s *Store) PutAllContactNames(ctx context.Context, contacts []store.ContactEntry) error {
	last := make(map[types.JID]int, len(contacts))
	for i, c := range contacts {
		last[c.JID] = i
	}
	if dup := len(contacts) - len(last); dup > 0 {
		s.log.Warnf("%d duplicate contacts found in PutAllContactNames", dup)
	}
	items := make([]upsertItem, 0, len(last))
	for jid, i := range last {
		items = append(items, upsertItem{id: contactID(jid), set: contactSet(jid,
			bson.E{Key: "firstName", Value: contacts[i].FirstName},
			bson.E{Key: "fullName", Value: contacts[i].FullName})})
	}
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	if err := putMany(ctx, s.coll, items); err != nil {
		return fmt.Errorf("put %d contact names: %w", len(items), err)
	}
	return nil
}

// PutManyRedactedPhones stores the redacted phone numbers of LID contacts.
func (s *Store) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	last := make(map[types.JID]int, len(entries))
	for i, e := range entries {
		last[e.JID] = i
	}
	if dup := len(entries) - len(last); dup > 0 {
		s.log.Warnf("%d duplicate contacts found in PutManyRedactedPhones", dup)
	}
	items := make([]upsertItem, 0, len(last))
	for jid, i := range last {
		items = append(items, upsertItem{id: contactID(jid), set: contactSet(jid,
			bson.E{Key: "redactedPhone", Value: entries[i].RedactedPhone})})
	}
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	if err := putMany(ctx, s.coll, items); err != nil {
		return fmt.Errorf("put %d redacted phones: %w", len(items), err)
	}
	return nil
}

// GetContact returns what is known of a contact; Found is false for an
// unknown one.
func (s *Store) GetContact(ctx context.Context, user types.JID) (types.ContactInfo, error) {
	var doc contactDoc
	found, err := s.findOne(ctx, contactID(user), &doc)
	if err != nil {
		return types.ContactInfo{}, fmt.Errorf("get contact %s: %w", user, err)
	}
	if !found {
		return types.ContactInfo{}, nil
	}
	return doc.info(), nil
}

// GetAllContacts returns every stored contact.
func (s *Store) GetAllContacts(ctx context.Context) (map[types.JID]types.ContactInfo, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "kind", Value: kindContact}})
	if err != nil {
		return nil, fmt.Errorf("get all contacts: %w", err)
	}
	var docs []contactDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("get all contacts: %w", err)
	}
	out := make(map[types.JID]types.ContactInfo, len(docs))
	for i := range docs {
		jid, err := types.ParseJID(docs[i].JID)
		if err != nil {
			return nil, fmt.Errorf("get all contacts: parse %q: %w", docs[i].JID, err)
		}
		out[jid] = docs[i].info()
	}
	return out, nil
}
