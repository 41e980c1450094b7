package poll

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// fakeT records what Until asks of a test.
type fakeT struct {
	helper bool
	failed string
}

func (f *fakeT) Helper() { f.helper = true }

func (f *fakeT) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	f := &fakeT{}
	Until(f, time.Minute, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 || f.failed != "" || !f.helper {
		t.Fatalf("calls %d, failed %q, helper %v", calls, f.failed, f.helper)
	}
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	f := &fakeT{}
	n := 0
	Until(f, 20*time.Millisecond, func() error { n++; return fmt.Errorf("attempt %d", n) })
	if !strings.Contains(f.failed, "within 20ms") || !strings.Contains(f.failed, fmt.Sprintf("attempt %d", n)) {
		t.Fatalf("failed with %q after %d attempts", f.failed, n)
	}
}

// TestNoTestingImport keeps package testing out of this package, which is
// not a _test file and so could end up in a binary.
func TestNoTestingImport(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list this package's dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/wildcathub/wildcat/core/poll").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" {
			t.Fatal("core/poll depends on package testing")
		}
	}
}
