package sdk_test

import (
	"encoding/json"
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
	requirementsMatch(t, filepath.Join(dir, "go.mod"), filepath.Join("..", "go.mod"))
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

// requirementsMatch fails when the example requires a module at another
// version than this module does. The build below runs offline from the
// module cache this module's build filled, which on a fresh machine holds
// this module's versions only: an example left behind by an upgrade would
// build here, from an older cache, and fail on a new machine.
func requirementsMatch(t *testing.T, example, main string) {
	t.Helper()
	ours := map[string]string{}
	for _, r := range goModRequires(t, main) {
		ours[r.Path] = r.Version
	}
	for _, r := range goModRequires(t, example) {
		if v, ok := ours[r.Path]; ok && v != r.Version {
			t.Errorf("%s requires %s %s, this module %s: run (cd sdk/examples/keywordtag && GOWORK=off go mod tidy)", example, r.Path, r.Version, v)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

type requirement struct{ Path, Version string }

// goModRequires reads a go.mod's requirements with `go mod edit -json`.
func goModRequires(t *testing.T, path string) []requirement {
	t.Helper()
	out, err := exec.Command("go", "mod", "edit", "-json", path).Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, err)
	}
	var mod struct{ Require []requirement }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go mod edit -json %s: %v", path, err)
	}
	if len(mod.Require) == 0 {
		t.Fatalf("%s: no requirements read", path)
	}
	return mod.Require
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
