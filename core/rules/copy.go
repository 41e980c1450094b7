package rules

import (
	"encoding/json"
	"time"
)

// KVEntry is one stored key of a rule file's namespace, for the
// engine-to-engine copy (wildcatd store copy): copy_mongo.go and
// copy_sqlite.go export and import them, expired ones included (the sweep
// removes those).
type KVEntry struct {
	Rule      string
	Key       string
	Value     json.RawMessage
	UpdatedAt time.Time
	ExpiresAt *time.Time
}
