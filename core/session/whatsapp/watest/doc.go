// Package watest is a WhatsApp protocol double for tests: an in-process
// server that an unmodified whatsmeow client connects to, playing
// WhatsApp's chat and media servers, the phone of each paired account and
// the contacts that message it.
//
// Wiring a client:
//
//	srv := watest.New(t)                 // installs the test root key
//	cli := whatsmeow.NewClient(device, watest.Logger(t, "WARN"))
//	srv.Configure(cli)                   // pre-login, websocket and media HTTP clients
//	cli.EnableAutoReconnect = true
//	_ = cli.Connect()                    // → *events.QR
//	acct, _ := srv.ScanQR(ctx, qr.Codes[0]) // → PairSuccess, reconnect, Connected
//
// What it covers, against whatsmeow's real code paths: the Noise XX
// handshake under a test certificate chain; QR pairing and pairing by phone
// code; the 515 reconnect after pairing; login with success, pre-key count
// and upload, passive and keepalive; contacts sending Signal-encrypted texts
// and media (pkmsg, then msg) and receiving what the client sends (usync
// device lists, pre-key bundles, decryption, acks); receipts both ways; the
// media_conn IQ with upload and download endpoints; expired media and the
// media retry round trip (ExpireMedia makes a contact's attachment answer
// 404; the account's phone opens the client's <receipt type="server-error">
// with the media key, uploads the file again under a new direct path and
// answers with an encrypted "mediaretry" notification, or with error code 2
// for a message it does not have; see MediaRetryRequests); offline delivery
// at login; and faults: dropped connections, logout from the phone, refused
// logins, stalled IQs and redelivery of unacknowledged messages.
//
// Groups (group.go, groupiq.go, groupmsg.go): the w:g2 IQs (create, info,
// participating groups, add/remove/promote/demote with WhatsApp's
// per-participant codes — see the GroupErr constants —, leave, subject,
// description, locked/announcement/approval settings, invite codes,
// preview and join by invite, join requests) and group pictures
// (w:profile:picture); w:gp2 notifications to the member accounts on every
// change (a "create" one to an account that joins: events.JoinedGroup);
// and group messages both ways with sender keys: a contact's group message
// carries its SenderKeyDistributionMessage over the 1:1 session next to the
// skmsg, and a companion's group message is opened by every member
// contact with the sender key it distributed. Contacts vote on polls
// (VotePoll) as WhatsApp clients do, under a key derived from the poll's
// message secret. Tests steer the other side with Contact.CreateGroup,
// AddToGroup, JoinGroupWithLink, LeaveGroup, RefuseGroupAdds and
// Group.SetSizeLimit, RequireApproval. Channels (channel.go): the list of
// followed channels and their messages; no live updates.
//
// What it does not cover: broadcast lists and status posts; LID
// addressing of contacts (contacts are reached by phone number and their
// messages carry no sender_lid, so whatsmeow logs "No LID found"); retry
// receipts for messages the client could not decrypt (logged, not
// answered); app state, history sync and the phone's own copy of sent
// messages (so no media retry for media the client sent); calls and
// presence. Every IQ it has no answer
// for gets an empty result, logged through t.Logf, so a client never waits
// out whatsmeow's 75-second IQ timeout.
//
// The certificate root is process-global (whatsmeow.WACertPubKey): a test
// binary that uses this package cannot reach the real WhatsApp.
package watest
