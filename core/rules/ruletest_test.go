package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestFindTestFilesThroughASymlink: `rules test --all --dir scripts` finds
// the cases of a scripts directory that is a symbolic link, named under the
// directory given.
func TestFindTestFilesThroughASymlink(t *testing.T) {
	target := t.TempDir()
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.test.json", "sub/b.test.json", "c.js"} {
		if err := os.WriteFile(filepath.Join(target, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(t.TempDir(), "scripts")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{target, link} {
		got, err := FindTestFiles(dir)
		want := []string{filepath.Join(dir, "a.test.json"), filepath.Join(dir, "sub", "b.test.json")}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("FindTestFiles(%s) = %q, %v; want %q", dir, got, err, want)
		}
	}
}
