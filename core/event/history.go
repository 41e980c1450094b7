package event

// HistorySync reports progress of WhatsApp's history sync after pairing.
// The synced messages themselves become ordinary message events with
// source "history"; this event only tells how far the sync has got.
type HistorySync struct {
	// Type is WhatsApp's sync type in lower case: initial_bootstrap,
	// recent, full, push_name, on_demand, ...
	Type              string `json:"type" bson:"type"`
	Progress          uint32 `json:"progress" bson:"progress"` // percent, 0-100
	ChunkOrder        uint32 `json:"chunkOrder" bson:"chunkOrder"`
	ConversationCount int    `json:"conversationCount" bson:"conversationCount"`
	MessageCount      int    `json:"messageCount" bson:"messageCount"`
}
