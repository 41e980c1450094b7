package sdk_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestExampleModuleBuildsOnItsOwn builds sdk/examples/keywordtag as what it
// is, a module of its own (GOWORK=off, its own go.mod requiring
// github.com/wildcathub/wildcat and replacing it with this checkout), the way
// a plugin outside this repository is built, and runs its tests. It works
// offline (GOPROXY=off) from the module cache the main module filled.
//
// The example's go.mod and go.sum are read from copies (-modfile) so that
// -mod=mod, which lets the build catch up when this module's requirements
// moved ahead of the example's, never rewrites the committed files; this
// module's go.sum is appended to the copy for the same reason.
func TestExampleModuleBuildsOnItsOwn(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("examples", "keywordtag"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	modfile := filepath.Join(tmp, "example.mod")
	copyFile(t, filepath.Join(dir, "go.mod"), modfile)
	sum := readFile(t, filepath.Join(dir, "go.sum"))
	sum = append(sum, readFile(t, filepath.Join("..", "go.sum"))...)
	if err := os.WriteFile(filepath.Join(tmp, "example.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod -buildvcs=false")
	for _, args := range [][]string{
		{"build", "-modfile=" + modfile, "-o", filepath.Join(tmp, "keywordtag"), "."},
		{"test", "-modfile=" + modfile, "-count=1", "."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in %s: %v\n%s", args[0], dir, err, out)
		}
	}
	if fi, err := os.Stat(filepath.Join(tmp, "keywordtag")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("no executable plugin built: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, readFile(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}
