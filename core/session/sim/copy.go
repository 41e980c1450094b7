package sim

// AuthRecord is one sim account's auth state, for the engine-to-engine copy
// (wildcatd store copy): copy_mongo.go and copy_sqlite.go export and import
// them.
type AuthRecord struct {
	AccountID string
	Auth
}
