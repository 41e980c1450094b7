// Package sealtest helps tests of encryption at rest: keys, and the raw
// bytes of a store to look for plaintext in.
package sealtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wildcathub/wildcat/core/sealing"
)

// Key is a fresh random key named id.
func Key(t testing.TB, id string) sealing.Key {
	t.Helper()
	b := make([]byte, sealing.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return sealing.Key{ID: id, Secret: b}
}

// Ring is the keyring of keys with active writing ("" the last).
func Ring(t testing.TB, active string, keys ...sealing.Key) *sealing.Keyring {
	t.Helper()
	k, err := sealing.New(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// SQLiteBytes is every byte of the database file at path and its WAL, as a
// thief copying the data directory would have them.
func SQLiteBytes(t testing.TB, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// DirBytes is every byte of every file under dir.
func DirBytes(t testing.TB, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// MongoBytes is the BSON of every document of every collection of db, as
// a database dump would have them (binary fields as they are).
func MongoBytes(t testing.TB, db *mongo.Database) []byte {
	t.Helper()
	ctx := context.Background()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, n := range names {
		cur, err := db.Collection(n).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			all = append(all, cur.Current...)
		}
		if err := cur.Err(); err != nil {
			t.Fatal(err)
		}
		cur.Close(ctx)
	}
	return all
}

// NoPlaintext fails the test for each marker found in dump.
func NoPlaintext(t testing.TB, where string, dump []byte, markers ...string) {
	t.Helper()
	for _, m := range markers {
		if bytes.Contains(dump, []byte(m)) {
			t.Errorf("%s holds the plaintext %q", where, m)
		}
	}
}

// HasPlaintext fails the test unless every marker is in dump: the check
// that NoPlaintext would see them.
func HasPlaintext(t testing.TB, where string, dump []byte, markers ...string) {
	t.Helper()
	for _, m := range markers {
		if !bytes.Contains(dump, []byte(m)) {
			t.Errorf("%s lacks the plaintext %q", where, m)
		}
	}
}
