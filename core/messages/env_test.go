package messages_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/messages"
	"github.com/wildcathub/wildcat/core/store"
	"github.com/wildcathub/wildcat/core/store/sqlite"
	"github.com/wildcathub/wildcat/core/store/storetest"
)

// env is a fresh store on one engine, with the engine's handle for the few
// checks that look beneath the Store.
type env struct {
	s     *messages.Store
	idem  *messages.Idempotency
	mongo *mongo.Database // MongoDB only
	sql   *sqlite.DB      // SQLite only
}

func newEnv(t *testing.T, e storetest.Engine) *env {
	t.Helper()
	switch e {
	case storetest.SQLite:
		db := storetest.NewSQLite(t, messages.SQLiteSchema)
		return &env{s: messages.NewSQLite(db, nil), idem: messages.NewIdempotencySQLite(db, time.Hour), sql: db}
	case storetest.MongoDB:
		db := storetest.NewDatabase(t)
		return &env{s: messages.New(db, nil), idem: messages.NewIdempotency(db, time.Hour), mongo: db}
	}
	t.Fatalf("unknown engine %q", e)
	return nil
}

// storedFields lists the field names of the stored document of id and its
// raw proto, as the engine keeps them.
func (v *env) storedFields(t *testing.T, id string) (map[string]bool, []byte) {
	t.Helper()
	keys := map[string]bool{}
	if v.mongo != nil {
		var raw bson.M
		if err := v.mongo.Collection(store.Messages).FindOne(context.Background(), bson.M{"_id": id}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		for k := range raw {
			keys[k] = true
		}
		b, _ := raw["rawMessage"].(bson.Binary)
		return keys, b.Data
	}
	var doc string
	var rawProto []byte
	if err := v.sql.Reader().QueryRow(`SELECT doc, raw FROM messages WHERE id = ?`, id).Scan(&doc, &rawProto); err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("doc is not JSON: %v", err)
	}
	for k := range m {
		keys[k] = true
	}
	if rawProto != nil {
		keys["rawMessage"] = true
	}
	return keys, rawProto
}

// insertLegacy stores a message document from before the pipeline mark
// existed.
func (v *env) insertLegacy(t *testing.T, accountID, messageID string) {
	t.Helper()
	id := messages.DocID(accountID, messageID)
	if v.mongo != nil {
		if _, err := v.mongo.Collection(store.Messages).InsertOne(context.Background(), bson.D{
			{Key: "_id", Value: id}, {Key: "accountId", Value: accountID}, {Key: "kind", Value: "message.received"},
			{Key: "storedAt", Value: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := v.sql.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO messages (id, account_id, message_id, chat_id, sort_key, kind, type, from_jid, from_pn, from_lid,
			from_me, timestamp, text, has_media, media_id, stored_at, status, status_rank, error, doc)
			VALUES (?, ?, ?, '', '', 'message.received', '', '', '', '', 0, 0, '', 0, '', ?, '', 0, '', ?)`,
			id, accountID, messageID, time.Now().UnixMilli(), `{"_id":"`+id+`","accountId":"`+accountID+`","kind":"message.received"}`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// countStored counts the stored documents of accountID on the engine
// itself: what a duplicate would add to.
func (v *env) countStored(t *testing.T, accountID string) int64 {
	t.Helper()
	var n int64
	var err error
	if v.mongo != nil {
		n, err = v.mongo.Collection(store.Messages).CountDocuments(context.Background(), bson.M{"accountId": accountID})
	} else {
		err = v.sql.Reader().QueryRow(`SELECT COUNT(*) FROM messages WHERE account_id = ?`, accountID).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}
