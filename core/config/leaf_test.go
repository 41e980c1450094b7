package config

import (
	"os/exec"
	"strings"
	"testing"
)

// TestConfigIsALeaf keeps this package free of the heavy dependencies of
// the packages that read the configuration: they import config, never the
// other way round (what needs them to check a value is in configcheck).
func TestConfigIsALeaf(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list this package's dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/wildcathub/wildcat/core/config").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"google.golang.org/grpc",
		"github.com/hashicorp/go-plugin",
		"go.mongodb.org/mongo-driver",
		"github.com/dop251/goja",
		"go.mau.fi/whatsmeow",
		"github.com/wildcathub/wildcat/core/pipeline",
		"github.com/wildcathub/wildcat/core/pluginhost",
		"github.com/wildcathub/wildcat/core/webhooks",
		"github.com/wildcathub/wildcat/core/configcheck",
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list printed no packages")
	}
	for _, f := range forbidden {
		var hits []string
		for _, dep := range deps {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				hits = append(hits, dep)
			}
		}
		if len(hits) > 0 {
			t.Errorf("core/config depends on %s (%d packages, e.g. %s); see `go list -deps` and move the import out", f, len(hits), hits[0])
		}
	}
}
