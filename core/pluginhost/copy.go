package pluginhost

import "time"

// KVEntry is one stored key of a plugin, for the engine-to-engine copy
// (wildcatd store copy): copy_mongo.go and copy_sqlite.go export and
// import them, expired ones included (the sweep removes those).
type KVEntry struct {
	Plugin    string
	Key       string
	Value     []byte
	UpdatedAt time.Time
	ExpiresAt *time.Time
}
