package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wildcathub/wildcat/core/daemon"
	"github.com/wildcathub/wildcat/core/session"
	"github.com/wildcathub/wildcat/core/store/sqlite"
)

func runCopy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"store", "copy"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

func openDataDir(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, daemon.DatabaseFile), Schemas: daemon.SQLiteSchemas()})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestStoreCopyCommand: bad input exits 2 naming the flag; a copy prints
// its counts; a target that holds data is refused unless --force; a
// database a daemon holds is refused, saying so.
func TestStoreCopyCommand(t *testing.T) {
	if code, _, stderr := runCopy(t, "--to", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "--from is required") {
		t.Fatalf("without --from: exit %d, %q", code, stderr)
	}
	if code, _, stderr := runCopy(t, "--from", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "--to is required") {
		t.Fatalf("without --to: exit %d, %q", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "nothing-here")
	if code, _, stderr := runCopy(t, "--from", missing, "--to", t.TempDir()); code != exitUsage || !strings.Contains(stderr, "--from") {
		t.Fatalf("a missing source: exit %d, %q", code, stderr)
	}

	src := t.TempDir()
	db := openDataDir(t, src)
	now := time.Now().UTC()
	if err := session.NewSQLiteAccounts(db).Insert(context.Background(), &session.AccountInfo{ID: "shop", Driver: "sim", Name: "Shop",
		State: session.StateCreated, Since: now, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// While a daemon holds the source, the copy is refused.
	code, _, stderr := runCopy(t, "--from", src, "--to", t.TempDir())
	if code != exitFailure || !strings.Contains(stderr, "stop it before copying") {
		t.Fatalf("a source in use: exit %d, %q", code, stderr)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "copy.db")
	code, stdout, stderr := runCopy(t, "--from", src, "--to", dst)
	if code != exitOK {
		t.Fatalf("copy: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "accounts       1       1") || !strings.Contains(stdout, "outbox jobs") {
		t.Fatalf("counts:\n%s", stdout)
	}
	if !strings.Contains(stderr, "accounts: 1 copied") {
		t.Fatalf("progress lines:\n%s", stderr)
	}
	code, _, stderr = runCopy(t, "--from", src, "--to", dst)
	if code != exitUsage || !strings.Contains(stderr, "target store is not empty") || !strings.Contains(stderr, "--force") {
		t.Fatalf("copy into a full target: exit %d, %q", code, stderr)
	}
	if code, stdout, stderr = runCopy(t, "--from", src, "--to", dst, "--force"); code != exitOK {
		t.Fatalf("forced copy: exit %d\n%s%s", code, stdout, stderr)
	}
	out, err := sqlite.Open(context.Background(), sqlite.Options{Path: dst, Schemas: daemon.SQLiteSchemas()})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if a, err := session.NewSQLiteAccounts(out).Get(context.Background(), "shop"); err != nil || a.Name != "Shop" {
		t.Fatalf("the copied account: %+v, %v", a, err)
	}
}
