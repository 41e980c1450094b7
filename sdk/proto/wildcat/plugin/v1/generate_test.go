package pluginv1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto files
// into a temporary directory and fails when the committed files differ: run
// `make proto` and commit the result.
//
// It needs nothing but Go: sdk/proto/protogen compiles the .proto files in
// process and runs the generators go.mod pins as tools, so the output depends
// only on the repository and is compared byte for byte.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs("../../../../..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./sdk/proto/protogen", "-out", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./sdk/proto/protogen: %v\n%s", err, b)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "sdk/proto/wildcat/plugin/v1/*.pb.go"))
	if err != nil || len(fresh) == 0 {
		t.Fatalf("protogen wrote no Go files (%v)", err)
	}
	committed, _ := filepath.Glob("*.pb.go")
	if len(committed) != len(fresh) {
		t.Errorf("committed %d generated files, protogen writes %d: run make proto", len(committed), len(fresh))
	}
	for _, f := range fresh {
		name := filepath.Base(f)
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s is not committed: run make proto", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make proto and commit the result", name)
		}
	}
}
