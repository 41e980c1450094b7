package pluginv1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// protocVersionLine matches the header line naming the protoc release; it is
// the only part of the output that depends on the machine rather than on the
// repository's pinned generators, so it is left out of the comparison.
var protocVersionLine = regexp.MustCompile(`(?m)^//\s*-?\s*protoc\s+v?[0-9][^\n]*\n`)

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto files
// into a temporary directory and fails when the committed files differ: run
// `make proto` and commit the result.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs("../../../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatal("protoc not found on PATH: run sdk/proto/install-tools.sh (make test runs it first)")
	}
	for _, tool := range []string{"protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := os.Stat(filepath.Join(root, "bin", "tools", tool)); err != nil {
			t.Fatalf("bin/tools/%s not found: run sdk/proto/install-tools.sh (make test runs it first)", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(root, "sdk", "proto", "generate.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "sdk/proto/wildcat/plugin/v1/*.pb.go"))
	if err != nil || len(fresh) == 0 {
		t.Fatalf("generate.sh wrote no Go files (%v)", err)
	}
	committed, _ := filepath.Glob("*.pb.go")
	if len(committed) != len(fresh) {
		t.Errorf("committed %d generated files, protoc writes %d: run make proto", len(committed), len(fresh))
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
		if !bytes.Equal(protocVersionLine.ReplaceAll(got, nil), protocVersionLine.ReplaceAll(want, nil)) {
			t.Errorf("%s is stale: run make proto and commit the result", name)
		}
	}
}
