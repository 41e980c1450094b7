package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wildcathub/wildcat/core/session/whatsapp/authstore"
)

// PostgresEnv names a PostgreSQL server for the PostgreSQL source test: a
// postgres:// URL whose user may create databases (the test makes one of
// its own and drops it). wuzapi and mautrix-whatsapp keep their whatsmeow
// store there.
const PostgresEnv = "WILDCAT_TEST_POSTGRES_URL"

// TestAccountsImportFromPostgres imports from a whatsmeow store on
// PostgreSQL, opened in read-only transactions. It needs a server: set
// WILDCAT_TEST_POSTGRES_URL (README: Testing).
func TestAccountsImportFromPostgres(t *testing.T) {
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip(PostgresEnv + " is not set: no PostgreSQL server to import from")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := "wildcat_import_" + hex.EncodeToString(r[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	src := u.String()
	db, err := sql.Open("pgx", src)
	if err != nil {
		t.Fatal(err)
	}
	jids := fillSource(t, db, "postgres", "15550001111")
	db.Close()

	// The source handle cannot write.
	ro, _, err := authstore.OpenReadOnly(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.ExecContext(ctx, `DELETE FROM whatsmeow_sessions`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write through the source handle: %v", err)
	}
	ro.Close()

	dir := t.TempDir()
	env := []string{"WILDCAT_DATA_DIR=" + dir}
	res := importCmd(t, env, "--from", src)
	if res.code != exitOK || !strings.Contains(res.stdout, jids[0].String()) {
		t.Fatalf("listing: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = importCmd(t, env, "--from", src, "--all", "--history")
	if res.code != exitOK || !strings.Contains(res.stdout, "imported "+jids[0].String()+" as account 15550001111") ||
		!strings.Contains(res.stdout, "history: no known history layout in the source") {
		t.Fatalf("import: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && strings.Contains(res.stdout+res.stderr, p) {
			t.Fatal("the output shows the database password")
		}
	}
	wdb := openDataDir(t, dir)
	defer wdb.Close()
	auth := openAuth(t, wdb, nil)
	defer auth.Close()
	dev, err := auth.Account("15550001111").GetDevice(ctx)
	if err != nil || dev.ID == nil || *dev.ID != jids[0] {
		t.Fatalf("device %v, %v", dev, err)
	}
	if got, err := dev.Sessions.GetSession(ctx, "15559990000.0"); err != nil || string(got) != sessionMark {
		t.Fatalf("session %q, %v", got, err)
	}
}
