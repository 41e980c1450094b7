package whatsapp

// MediaRetryRecord is one stored media retry answer, for the engine-to-engine
// copy (wildcatd store copy): copy_mongo.go and copy_sqlite.go export and
// import them.
type MediaRetryRecord struct {
	AccountID string
	MessageID string
	MediaRetry
}
