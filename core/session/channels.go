package session

import "errors"

// ErrChannelNotFound: the account follows no channel with that JID (or
// there is none). The API answers 404.
var ErrChannelNotFound = errors.New("channel not found or not followed by the account")
