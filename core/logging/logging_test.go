package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestFormatsAndLevels(t *testing.T) {
	tests := []struct {
		format, level string
		wantJSON      bool
		debugShown    bool
	}{
		{"json", "info", true, false},
		{"text", "debug", false, true},
		{"auto", "warn", true, false}, // a buffer is not a terminal
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			log := Component(New(&buf, tt.level, tt.format), "store")
			log.Debug("dbg")
			log.Error("boom", "account_id", "acme")
			out := buf.String()
			if got := strings.Contains(out, "dbg"); got != tt.debugShown {
				t.Fatalf("debug line shown = %v, want %v: %q", got, tt.debugShown, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			var m map[string]any
			isJSON := json.Unmarshal([]byte(last), &m) == nil
			if isJSON != tt.wantJSON {
				t.Fatalf("JSON = %v, want %v: %q", isJSON, tt.wantJSON, last)
			}
			if !strings.Contains(last, "component") || !strings.Contains(last, "store") || !strings.Contains(last, "acme") {
				t.Fatalf("fields missing: %q", last)
			}
		})
	}
}
