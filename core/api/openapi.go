package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/wildcathub/wildcat/core/session/sim"
)

// The OpenAPI 3.1 document is Go data: no generator, no second source to
// drift. Tests walk the router and fail when a route is missing here or
// listed here without existing, and they send every request example below
// to a running daemon and check the documented answer. The examples
// therefore tell one story, in order (Operations): the sim account "demo"
// receives a message from Ann, answers it, and so on.

// ExampleMediaBytes is the body of the upload example; its SHA-256 is the
// example mediaId.
const ExampleMediaBytes = "example image bytes"

// ExampleMediaID is the mediaId of ExampleMediaBytes.
var ExampleMediaID = func() string { s := sha256.Sum256([]byte(ExampleMediaBytes)); return hex.EncodeToString(s[:]) }()

// Example ids the story uses.
const (
	ExampleAccount       = "demo"
	ExampleNewAccount    = "acme"
	ExampleMessageID     = "3EB0C0FFEE000001"
	ExampleContactPhone  = "+15551234567"
	ExampleContactChatID = "15551234567@s.whatsapp.net"
	// ExampleBroadcastList is a broadcast list of the examples, and
	// ExampleChannel a channel the sim follows.
	ExampleBroadcastList = "1764000000@broadcast"
	ExampleChannel       = "120363000000000101@newsletter"
	// ExampleSink is the sink target of the pipeline example. No sinks are
	// built into wildcatd yet; the example daemon registers one by this name.
	ExampleSink = "webhooks"
)

// ExampleDeliveryID is the outbox job delivering the example message to
// ExampleSink.
const ExampleDeliveryID = ExampleAccount + ":" + ExampleMessageID + "|" + ExampleSink

// The webhook endpoint of the examples.
const (
	ExampleWebhook    = "crm"
	ExampleWebhookURL = "https://crm.example.com/hooks/wildcat"
)

var webhookExample = map[string]any{
	"id": ExampleWebhook, "url": ExampleWebhookURL, "events": []string{"message.received", "message.status"}, "accounts": []string{ExampleAccount},
	"sources": []string{"*"}, "description": "CRM inbox", "headers": map[string]string{"X-Api-Key": "k1"}, "enabled": true, "rateLimit": 0, "batch": false, "ordered": false, "source": "api",
	"createdAt": "2026-11-25T12:05:00Z", "updatedAt": "2026-11-25T12:05:00Z",
}

// ExampleKey is the id of the example API key.
const ExampleKey = "crm"

var keyExample = map[string]any{
	"id": ExampleKey, "name": "CRM", "scopes": []string{"messages:read", "messages:send"}, "accounts": []string{ExampleAccount},
	"createdAt": "2026-11-25T12:05:00Z",
}

// Operation is one documented route.
type Operation struct {
	Method, Path string
	Summary      string
	Tag          string
	// PathExamples fill the path's {variables} in the example request.
	PathExamples map[string]string
	// Query is the example request's query string.
	Query  string
	Params []map[string]any
	// Body is the request body: content type, schema, named examples.
	BodyType     string
	BodySchema   map[string]any
	BodyExamples map[string]any
	// BodyOptional: the operation also runs without a body.
	BodyOptional bool
	// Status and Response document the success answer and its example.
	Status      int
	Response    map[string]any
	ResponseEx  any
	ResponseRaw string // a non-JSON answer's content type; */* for any
	// ResponseAlt are further media types of the success answer.
	ResponseAlt map[string]any
	// Errors are the problem answers (application/problem+json).
	Errors []int
	// Other documents further answers as OpenAPI response objects, by
	// status.
	Other map[int]map[string]any
}

func str(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
func integer(desc string) map[string]any {
	return map[string]any{"type": "integer", "description": desc}
}
func boolean(desc string) map[string]any {
	return map[string]any{"type": "boolean", "description": desc}
}
func num(desc string) map[string]any   { return map[string]any{"type": "number", "description": desc} }
func ref(name string) map[string]any   { return map[string]any{"$ref": "#/components/schemas/" + name} }
func arr(items any) map[string]any     { return map[string]any{"type": "array", "items": items} }
func nullable(s string) map[string]any { return map[string]any{"type": []string{s, "null"}} }
func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func pathParam(name, desc string) map[string]any {
	return map[string]any{"name": name, "in": "path", "required": true, "description": desc, "schema": map[string]any{"type": "string"}}
}

func queryParam(name, typ, desc string) map[string]any {
	return map[string]any{"name": name, "in": "query", "description": desc, "schema": map[string]any{"type": typ}}
}

// proxyDoc describes an account's proxy field.
const proxyDoc = "proxy for the account's WhatsApp connection and media: socks5://, http:// (CONNECT) or https:// URL with host and port, user:password@ allowed; sealed at rest when encryption is on. The sim driver stores it and uses no network"

var accountExample = map[string]any{
	"id": ExampleAccount, "driver": "sim", "name": "Demo", "state": "connected", "reason": "paired",
	"jid": "15551460268@s.whatsapp.net", "pushName": "Demo", "lastError": "",
	"since": "2026-11-25T12:00:00Z", "createdAt": "2026-11-25T11:59:00Z", "driverAvailable": true, "proxy": "",
}

var instanceExample = map[string]any{
	"id": "local", "url": "http://127.0.0.1:8080", "version": "dev", "startedAt": "2026-11-25T11:58:00Z", "heartbeatAt": "2026-11-25T12:00:00Z",
	"accounts": []string{ExampleAccount}, "self": true,
}

var messageExample = map[string]any{
	"id": ExampleAccount + ":" + ExampleMessageID, "accountId": ExampleAccount, "messageId": ExampleMessageID,
	"chatId": ExampleContactChatID, "from": ExampleContactChatID, "fromMe": false, "timestamp": 1795632000,
	"type": "text", "text": "Hi, is my order ready?", "hasMedia": false, "pushName": "Ann",
	"isGroup": false, "isBroadcast": false, "isStatus": false, "isEphemeral": false, "isViewOnce": false,
	"isForwarded": false, "edited": false, "revoked": false,
	"kind": "message.received", "source": "phone", "storedAt": "2026-11-25T12:00:01Z",
}

var chatExample = map[string]any{
	"accountId": ExampleAccount, "id": ExampleContactChatID, "chatPn": ExampleContactChatID, "name": "Ann", "isGroup": false,
	"lastMessage": map[string]any{"id": ExampleAccount + ":3EB0A1B2C3D4E5F60718", "messageId": "3EB0A1B2C3D4E5F60718",
		"from": "15551460268@s.whatsapp.net", "fromMe": true, "type": "text", "text": "Yes — it ships today.", "timestamp": 1795632060},
	"lastActivity": 1795632060, "unreadCount": 0, "messageCount": 2, "updatedAt": "2026-11-25T12:01:00Z",
}

// The group of the examples: the first the example account creates, and
// its invite codes before and after a reset (the sim derives both).
var (
	ExampleGroupID     = sim.GroupJIDFor(ExampleAccount, 1)
	exampleInviteCode1 = sim.InviteCodeFor(ExampleGroupID, 1)
	ExampleInviteCode  = sim.InviteCodeFor(ExampleGroupID, 2)
)

// ExampleJPEG is a 1×1 JPEG, base64: the group picture of the examples.
const ExampleJPEG = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAA//EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AN//Z"

var groupExample = map[string]any{
	"jid": ExampleGroupID, "name": "Orders", "owner": "15551460268@s.whatsapp.net", "ownerPn": "15551460268@s.whatsapp.net",
	"createdAt": "2026-11-25T12:02:00Z", "locked": false, "announce": false, "joinApproval": false,
	"participants": []any{
		map[string]any{"jid": "15551460268@s.whatsapp.net", "pn": "15551460268@s.whatsapp.net", "lid": "90123456789012@lid", "role": "superadmin"},
		map[string]any{"jid": ExampleContactChatID, "pn": ExampleContactChatID, "role": "member"},
	},
}

var stageStatsExample = []any{
	map[string]any{"name": "vip", "kind": "builtin", "mode": "inline", "in": 0, "actions": map[string]any{}, "actionFailures": map[string]any{}, "errors": 0, "timeouts": 0,
		"dropped": 0, "enqueued": 0, "deadLetters": 0, "calls": 0, "meanLatencyNs": 0},
	map[string]any{"name": ExampleSink, "kind": "sink", "mode": "sink", "target": ExampleSink, "in": 0, "actions": map[string]any{}, "actionFailures": map[string]any{}, "errors": 0,
		"timeouts": 0, "dropped": 0, "enqueued": 0, "deadLetters": 0, "calls": 0, "meanLatencyNs": 0},
}

var pipelineExample = map[string]any{"generation": 2, "stages": stageStatsExample, "queued": 0, "activeChats": 0}

// ruleExamples: a rule running, and one whose edited file does not
// compile (its previous version keeps running).
var ruleExamples = []any{
	map[string]any{"stage": "rules", "name": "20-business-hours", "file": "scripts/20-business-hours.js", "version": "5d41402abc4b",
		"loadedAt": "2026-11-25T11:58:00Z", "kinds": []string{"message.received"}, "calls": 1042, "errors": 0, "timeouts": 0, "p99Ns": 850000},
	map[string]any{"stage": "rules", "name": "30-keyword-router", "file": "scripts/30-keyword-router.js", "version": "7d793037a076",
		"loadedAt": "2026-11-25T11:58:00Z", "loadError": "rule 30-keyword-router: SyntaxError: Unexpected token ) (scripts/30-keyword-router.js:31:4)",
		"kinds": []string{"message.received"}, "calls": 1042, "errors": 1, "timeouts": 0, "p99Ns": 120000},
}

// pluginExample is a running inline plugin (the SDK's echo example).
var pluginExample = map[string]any{
	"name": "echo", "path": "bin/plugins/echo", "plugin": "echo", "version": "1.0.0",
	"capabilities": []string{"inline"}, "eventKinds": []string{"message.received"},
	"state": "running", "protocol": 2, "pid": 41873, "startedAt": "2026-11-25T11:58:00Z", "restarts": 1,
	"lastError": "plugin process exited", "lastErrorAt": "2026-11-25T11:57:59Z",
	"calls": map[string]any{
		"handle":  map[string]any{"calls": 1042, "errors": 2, "timeouts": 1},
		"deliver": map[string]any{"calls": 0, "errors": 0, "timeouts": 0},
	},
}

var traceExample = map[string]any{
	"messageId": ExampleMessageID, "eventId": ExampleAccount + ":" + ExampleMessageID, "storedAt": "2026-11-25T12:00:01Z",
	"trace": map[string]any{"eventId": ExampleAccount + ":" + ExampleMessageID, "started": "2026-11-25T12:00:00.990Z", "durationMs": 4.2,
		"stages": []any{
			map[string]any{"name": "rules", "kind": "rules", "startMs": 0.01, "durationMs": 1.9, "outcome": "ok",
				"actions": []any{map[string]any{"type": "tag", "origin": "10-vip", "tags": []string{"vip"}}},
				"rules":   []any{map[string]any{"rule": "10-vip", "file": "scripts/10-vip.js", "durationMs": 0.4, "effects": 1}}},
			map[string]any{"name": "deliver", "kind": "sink", "startMs": 1.95, "durationMs": 0.02, "outcome": "ok", "targets": []string{ExampleSink}},
		}},
	"deliveries": []any{deliveryExample},
}

var deliveryExample = map[string]any{
	"id": ExampleDeliveryID, "eventId": ExampleAccount + ":" + ExampleMessageID, "target": ExampleSink, "accountId": ExampleAccount,
	"state": "done", "attempts": 1, "runAt": "2026-11-25T12:00:01Z", "firstAttemptAt": "2026-11-25T12:00:01Z",
	"createdAt": "2026-11-25T12:00:01Z", "updatedAt": "2026-11-25T12:00:01Z",
	"log": []any{map[string]any{"at": "2026-11-25T12:00:01Z", "durationMs": 12, "result": "ok", "status": 200}},
	"event": map[string]any{"id": ExampleAccount + ":" + ExampleMessageID, "kind": "message.received", "accountId": ExampleAccount,
		"timestamp": "2026-11-25T12:00:00Z", "chatId": ExampleContactChatID, "source": "phone", "message": eventMessageExample(), "tags": []string{"vip"}},
}

// eventMessageExample is messageExample as an event carries it.
func eventMessageExample() map[string]any {
	m := withFields(messageExample, nil)
	for _, k := range []string{"id", "kind", "source", "storedAt"} {
		delete(m, k)
	}
	return m
}

// retriedExample is a job just queued again: a fresh schedule, so no
// first attempt yet.
func retriedExample() map[string]any {
	j := withFields(deliveryExample, map[string]any{"state": "pending", "attempts": 0})
	delete(j, "firstAttemptAt")
	return j
}

var channelExample = map[string]any{
	"jid": ExampleChannel, "name": "Wildcat News", "description": "Releases and notes of the Wildcat project (simulated)",
	"subscribers": 1280, "role": "subscriber",
}

var channelPostExample = map[string]any{
	"accountId": ExampleAccount, "messageId": "104", "chatId": ExampleChannel, "from": ExampleChannel, "fromMe": false,
	"timestamp": 1767272400, "type": "text", "text": "Plugins run out of process and speak gRPC.", "hasMedia": false,
	"isGroup": false, "isBroadcast": false, "isStatus": false, "isEphemeral": false, "isViewOnce": false, "isForwarded": false,
	"edited": false, "revoked": false,
}

var mediaExample = map[string]any{
	"mediaId": ExampleMediaID, "sha256": ExampleMediaID, "size": len(ExampleMediaBytes), "mimetype": "image/png",
	"url": "/v1/media/" + ExampleMediaID,
}

// Operations lists every /v1 route, in the order of the examples' story.
func Operations() []Operation {
	acct := map[string]string{"id": ExampleAccount}
	newAcct := map[string]string{"id": ExampleNewAccount}
	grp := map[string]string{"id": ExampleAccount, "groupId": ExampleGroupID}
	limitCursor := []map[string]any{
		queryParam("cursor", "string", "nextCursor of the previous page; opaque"),
		queryParam("limit", "integer", "page size, 1 to 500 (default 50)"),
	}
	return []Operation{
		{Method: "GET", Path: "/v1/openapi.json", Summary: "This document", Tag: "meta",
			Status: 200, Response: map[string]any{"type": "object", "additionalProperties": true, "description": "an OpenAPI 3.1 document"}, ResponseEx: map[string]any{"openapi": "3.1.0", "info": map[string]any{}, "paths": map[string]any{}}},

		{Method: "POST", Path: "/v1/accounts", Summary: "Create an account", Tag: "accounts",
			BodyType: "application/json", BodySchema: ref("CreateAccount"),
			BodyExamples: map[string]any{"sim": map[string]any{"id": ExampleNewAccount, "driver": "sim", "name": "Acme support"}},
			Status:       201, Response: ref("Account"), ResponseEx: withFields(accountExample, map[string]any{"id": ExampleNewAccount, "state": "created", "jid": "", "name": "Acme support"}),
			Errors: []int{400, 409}},
		{Method: "PATCH", Path: "/v1/accounts/{id}", Summary: "Change the account's proxy (\"\" returns it to drivers.whatsapp.proxy); a running session reconnects through the new one", Tag: "accounts", PathExamples: newAcct,
			BodyType: "application/json", BodySchema: ref("UpdateAccount"),
			BodyExamples: map[string]any{"proxy": map[string]any{"proxy": "socks5://user:secret@proxy.example.com:1080"}},
			Status:       200, Response: ref("Account"),
			ResponseEx: withFields(accountExample, map[string]any{"id": ExampleNewAccount, "state": "created", "jid": "", "name": "Acme support", "proxy": "socks5://user:***@proxy.example.com:1080"}),
			Errors:     []int{400, 404}},
		{Method: "GET", Path: "/v1/accounts", Summary: "List accounts", Tag: "accounts",
			Status: 200, Response: obj(map[string]any{"accounts": arr(ref("Account"))}), ResponseEx: map[string]any{"accounts": []any{accountExample}}},
		{Method: "GET", Path: "/v1/accounts/{id}", Summary: "Read an account, with the instance (daemon) running it", Tag: "accounts", PathExamples: acct,
			Status: 200, Response: ref("Account"), ResponseEx: withFields(accountExample, map[string]any{"instance": "local"}), Errors: []int{404}},
		{Method: "GET", Path: "/v1/instances", Summary: "The live daemons sharing the store, with the accounts each runs, version, start time and last heartbeat", Tag: "accounts",
			Status: 200, Response: obj(map[string]any{"instances": arr(ref("Instance"))}, "instances"), ResponseEx: map[string]any{"instances": []any{instanceExample}}},
		{Method: "POST", Path: "/v1/accounts/{id}/connect", Summary: "Connect (pair or reconnect)", Tag: "accounts", PathExamples: newAcct,
			Status: 202, Response: ref("Account"), ResponseEx: withFields(accountExample, map[string]any{"id": ExampleNewAccount, "state": "created"}), Errors: []int{404, 409, 503}},
		{Method: "GET", Path: "/v1/accounts/{id}/qr", Summary: "Current pairing QR code (JSON, or PNG with Accept: image/png)", Tag: "accounts", PathExamples: newAcct,
			Status: 200, Response: obj(map[string]any{"code": str("the QR code's text"), "expiresAt": str("RFC 3339")}),
			ResponseEx:  map[string]any{"code": "2@sim…", "expiresAt": "2026-11-25T12:00:20Z"},
			ResponseAlt: map[string]any{"image/png": map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": "image/png"}}},
			Errors:      []int{404, 409}},
		{Method: "POST", Path: "/v1/accounts/{id}/pairing-code", Summary: "Pair by phone number: a code to type on the phone", Tag: "accounts", PathExamples: newAcct,
			BodyType: "application/json", BodySchema: obj(map[string]any{"phone": str("the phone's number with country code")}, "phone"),
			BodyExamples: map[string]any{"phone": map[string]any{"phone": ExampleContactPhone}},
			Status:       200, Response: obj(map[string]any{"code": str("type it on the phone")}), ResponseEx: map[string]any{"code": "ABCD-EFGH"}, Errors: []int{400, 404, 409}},
		{Method: "GET", Path: "/v1/pipeline", Summary: "The running pipeline: stages with their counters", Tag: "pipeline",
			Status: 200, Response: ref("Pipeline"), ResponseEx: withFields(pipelineExample, map[string]any{"generation": 1, "stages": []any{}})},
		{Method: "POST", Path: "/v1/pipeline/reload", Summary: "Replace the stages: with a body, by the complete list it holds (config.yaml is not re-read); without one, by the pipeline of a re-read config.yaml (422 if the file is refused). Events in flight finish on the old list", Tag: "pipeline",
			BodyType: "application/json", BodyOptional: true, BodySchema: obj(map[string]any{"stages": arr(ref("Stage"))}, "stages"),
			BodyExamples: map[string]any{"tag and deliver": map[string]any{"stages": []any{
				map[string]any{"name": "vip", "builtin": "tag", "config": map[string]any{"tag": "vip"}, "match": map[string]any{"kinds": []string{"message.received"}}},
				map[string]any{"name": ExampleSink, "sink": ExampleSink, "match": map[string]any{"kinds": []string{"message.received"}}},
			}}},
			Status: 200, Response: ref("Pipeline"), ResponseEx: pipelineExample, Errors: []int{400, 409, 415, 422}},
		{Method: "GET", Path: "/v1/rules", Summary: "The JavaScript rules of the pipeline's rules stages: running version, load error, counters", Tag: "pipeline",
			Status: 200, Response: obj(map[string]any{"rules": arr(ref("Rule"))}, "rules"), ResponseEx: map[string]any{"rules": ruleExamples}},
		{Method: "POST", Path: "/v1/accounts/{id}/sim/inbound", Summary: "Sim accounts: receive a message from an outside contact", Tag: "sim", PathExamples: acct,
			BodyType: "application/json", BodySchema: ref("SimInbound"),
			BodyExamples: map[string]any{"text": map[string]any{"from": ExampleContactPhone, "pushName": "Ann", "id": ExampleMessageID, "text": "Hi, is my order ready?"}},
			Status:       201, Response: obj(map[string]any{"eventId": str(""), "messageId": str(""), "kind": str("")}),
			ResponseEx: map[string]any{"eventId": ExampleAccount + ":" + ExampleMessageID, "messageId": ExampleMessageID, "kind": "message.received"}, Errors: []int{400, 404, 409, 422}},

		{Method: "POST", Path: "/v1/media", Summary: "Upload media (multipart field \"file\", or the raw body with its Content-Type)", Tag: "media",
			BodyType: "image/png", BodySchema: map[string]any{"type": "string", "contentMediaType": "application/octet-stream"},
			BodyExamples: map[string]any{"raw": ExampleMediaBytes},
			Status:       201, Response: ref("Media"), ResponseEx: mediaExample, Errors: []int{400, 413, 415}},

		{Method: "POST", Path: "/v1/accounts/{id}/messages", Summary: "Send a message: stored as pending, answered 202, status follows", Tag: "messages", PathExamples: acct,
			Params:   []map[string]any{{"name": IdempotencyHeader, "in": "header", "description": "a retry with the same key returns the first answer instead of sending twice", "schema": map[string]any{"type": "string"}}},
			BodyType: "application/json", BodySchema: ref("SendRequest"),
			BodyExamples: map[string]any{
				"text":      map[string]any{"to": ExampleContactPhone, "text": "Yes — it ships today."},
				"reply":     map[string]any{"to": ExampleContactPhone, "text": "Tracking follows.", "replyTo": ExampleMessageID, "mentions": []string{ExampleContactPhone}},
				"image":     map[string]any{"to": ExampleContactPhone, "media": map[string]any{"mediaId": ExampleMediaID, "mimetype": "image/png"}, "caption": "Your parcel"},
				"document":  map[string]any{"to": ExampleContactPhone, "media": map[string]any{"data": "JVBERi0xLjQK", "mimetype": "application/pdf", "filename": "invoice.pdf"}},
				"location":  map[string]any{"to": ExampleContactPhone, "location": map[string]any{"lat": 52.52, "lng": 13.405, "name": "Pick-up point"}},
				"contact":   map[string]any{"to": ExampleContactPhone, "contact": map[string]any{"name": "Support", "phone": "+15550000000"}},
				"reaction":  map[string]any{"reaction": map[string]any{"messageId": ExampleMessageID, "emoji": "👍"}},
				"poll":      map[string]any{"to": ExampleContactPhone, "poll": map[string]any{"name": "Delivery slot?", "options": []string{"Morning", "Afternoon", "Evening"}, "selectableCount": 1}},
				"status":    map[string]any{"to": "status@broadcast", "text": "Open until 8 pm today", "statusRecipients": []string{ExampleContactPhone}},
				"broadcast": map[string]any{"to": ExampleBroadcastList, "text": "New prices from Monday"},
			},
			Status: 202, Response: ref("SendAccepted"),
			ResponseEx: map[string]any{"id": ExampleAccount + ":3EB0A1B2C3D4E5F60718", "messageId": "3EB0A1B2C3D4E5F60718", "status": "pending", "scheduledAt": "2025-06-01T09:30:04Z"},
			// 429 also when the account reached its daily send cap (Retry-After: the next UTC day).
			Errors: []int{400, 404, 409, 413, 415, 422, 429, 503}},
		{Method: "GET", Path: "/v1/accounts/{id}/messages", Summary: "History, newest first, filtered and paginated", Tag: "messages", PathExamples: acct,
			Query: "chatId=" + strings.TrimPrefix(ExampleContactPhone, "+") + "&limit=20",
			Params: append([]map[string]any{
				queryParam("chatId", "string", "a chat: JID or phone number"),
				queryParam("from", "string", "a sender: JID (phone-number or LID form) or phone number"),
				queryParam("type", "string", "text, image, video, gif, ptv, audio, voice, document, sticker, location, …"),
				queryParam("fromMe", "boolean", "only ours (true) or only theirs (false)"),
				queryParam("since", "string", "RFC 3339 or Unix seconds, inclusive"),
				queryParam("until", "string", "RFC 3339 or Unix seconds, exclusive"),
				queryParam("q", "string", "text or caption contains, ignoring case; refused (400) while encryption at rest is on"),
			}, limitCursor...),
			Status: 200, Response: ref("MessagePage"), ResponseEx: map[string]any{"messages": []any{messageExample}, "nextCursor": nil}, Errors: []int{400, 404}},
		{Method: "GET", Path: "/v1/accounts/{id}/messages/{messageId}", Summary: "One message, raw proto included", Tag: "messages",
			PathExamples: map[string]string{"id": ExampleAccount, "messageId": ExampleMessageID},
			Status:       200, Response: ref("Message"), ResponseEx: messageExample, Errors: []int{404}},
		{Method: "GET", Path: "/v1/accounts/{id}/messages/{messageId}/trace", Summary: "What the pipeline did with the message's event: each stage, rule and action, with timings, and the outbox jobs it made with their attempts (kept for outbox.retention; 404 no-trace before the pipeline finished the event or after)", Tag: "messages",
			PathExamples: map[string]string{"id": ExampleAccount, "messageId": ExampleMessageID},
			Status:       200, Response: ref("MessageTrace"), ResponseEx: traceExample, Errors: []int{404}},
		{Method: "GET", Path: "/v1/accounts/{id}/chats", Summary: "Chats by last activity, with unread counts", Tag: "messages", PathExamples: acct,
			Params: limitCursor,
			Status: 200, Response: obj(map[string]any{"chats": arr(ref("Chat")), "nextCursor": nullable("string")}),
			ResponseEx: map[string]any{"chats": []any{chatExample}, "nextCursor": nil}, Errors: []int{400, 404}},
		{Method: "GET", Path: "/v1/accounts/{id}/chats/{chatId}", Summary: "One chat", Tag: "messages",
			PathExamples: map[string]string{"id": ExampleAccount, "chatId": ExampleContactChatID},
			Status:       200, Response: ref("Chat"), ResponseEx: chatExample, Errors: []int{404}},
		{Method: "GET", Path: "/v1/accounts/{id}/channels", Summary: "The channels (newsletters) the account follows", Tag: "channels", PathExamples: acct,
			Status: 200, Response: obj(map[string]any{"channels": arr(ref("Channel"))}, "channels"),
			ResponseEx: map[string]any{"channels": []any{channelExample}}, Errors: []int{404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/channels/{jid}/messages", Summary: "A channel's posts, newest first", Tag: "channels",
			PathExamples: map[string]string{"id": ExampleAccount, "jid": ExampleChannel}, Query: "limit=2",
			Params: []map[string]any{
				queryParam("limit", "integer", "page size, 1 to 100 (default 20)"),
				queryParam("before", "integer", "nextBefore of the previous page: posts older than this server ID"),
			},
			Status: 200, Response: obj(map[string]any{"messages": arr(ref("EventMessage")), "nextBefore": nullable("integer")}, "messages", "nextBefore"),
			ResponseEx: map[string]any{"messages": []any{channelPostExample}, "nextBefore": 103}, Errors: []int{400, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups", Summary: "Create a group: the account is its superadmin, the participants (phone numbers or JIDs) its members", Tag: "groups", PathExamples: acct,
			BodyType: "application/json", BodySchema: ref("CreateGroup"),
			BodyExamples: map[string]any{"orders": map[string]any{"subject": "Orders", "participants": []string{ExampleContactPhone}}},
			Status:       201, Response: ref("Group"), ResponseEx: groupExample, Errors: []int{400, 404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/groups", Summary: "The groups the account is in", Tag: "groups", PathExamples: acct,
			Status: 200, Response: obj(map[string]any{"groups": arr(ref("Group"))}, "groups"), ResponseEx: map[string]any{"groups": []any{groupExample}}, Errors: []int{404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/groups/{groupId}", Summary: "One group: subject, description, owner, settings, participants with their roles", Tag: "groups", PathExamples: grp,
			Status: 200, Response: ref("Group"), ResponseEx: groupExample, Errors: []int{404, 409, 501}},
		{Method: "PATCH", Path: "/v1/accounts/{id}/groups/{groupId}", Summary: "Change the subject, the description (\"\" removes it) or the settings; each field set is one change, in that order. 403 when the change needs admin rights", Tag: "groups", PathExamples: grp,
			BodyType: "application/json", BodySchema: ref("GroupUpdateRequest"),
			BodyExamples: map[string]any{"describe and announce": map[string]any{"description": "Order updates", "announce": true}},
			Status:       200, Response: ref("Group"), ResponseEx: withFields(groupExample, map[string]any{"topic": "Order updates", "announce": true}), Errors: []int{400, 403, 404, 409, 501}},
		{Method: "PUT", Path: "/v1/accounts/{id}/groups/{groupId}/picture", Summary: "Set the group's picture: a JPEG, base64", Tag: "groups", PathExamples: grp,
			BodyType: "application/json", BodySchema: obj(map[string]any{"jpeg": str("the JPEG image, base64")}, "jpeg"),
			BodyExamples: map[string]any{"jpeg": map[string]any{"jpeg": ExampleJPEG}},
			Status:       200, Response: obj(map[string]any{"pictureId": str("the new picture's id")}, "pictureId"), ResponseEx: map[string]any{"pictureId": "1764707640"}, Errors: []int{400, 403, 404, 409, 501}},
		{Method: "DELETE", Path: "/v1/accounts/{id}/groups/{groupId}/picture", Summary: "Remove the group's picture", Tag: "groups", PathExamples: grp,
			Status: 204, Errors: []int{403, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups/{groupId}/participants", Summary: "Add, remove, promote or demote participants (admins): WhatsApp's result for each", Tag: "groups", PathExamples: grp,
			BodyType: "application/json", BodySchema: ref("ParticipantsRequest"),
			BodyExamples: map[string]any{
				"add":     map[string]any{"action": "add", "participants": []string{"+15557654321"}},
				"promote": map[string]any{"action": "promote", "participants": []string{ExampleContactPhone}},
			},
			Status: 200, Response: obj(map[string]any{"results": arr(ref("ParticipantResult"))}, "results"),
			ResponseEx: map[string]any{"results": []any{map[string]any{"jid": "15557654321@s.whatsapp.net", "status": "ok"}}}, Errors: []int{400, 403, 404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/groups/{groupId}/invite-link", Summary: "The group's invite link (admins)", Tag: "groups", PathExamples: grp,
			Status: 200, Response: ref("InviteLink"), ResponseEx: map[string]any{"link": "https://chat.whatsapp.com/" + exampleInviteCode1, "code": exampleInviteCode1}, Errors: []int{403, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups/{groupId}/invite-link/reset", Summary: "Revoke the invite link and answer the new one (admins)", Tag: "groups", PathExamples: grp,
			Status: 200, Response: ref("InviteLink"), ResponseEx: map[string]any{"link": "https://chat.whatsapp.com/" + ExampleInviteCode, "code": ExampleInviteCode}, Errors: []int{403, 404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/groups/invites/{code}", Summary: "Preview the group an invite code leads to (404 when it was revoked)", Tag: "groups",
			PathExamples: map[string]string{"id": ExampleAccount, "code": ExampleInviteCode},
			Status:       200, Response: ref("Group"), ResponseEx: groupExample, Errors: []int{400, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups/join", Summary: "Join by invite link or code: 200 with the group, or 202 when an admin must approve (a request was sent)", Tag: "groups", PathExamples: acct,
			BodyType: "application/json", BodySchema: obj(map[string]any{"link": str("the invite link, or its code")}, "link"),
			BodyExamples: map[string]any{"link": map[string]any{"link": "https://chat.whatsapp.com/" + ExampleInviteCode}},
			Status:       200, Response: ref("JoinResult"), ResponseEx: map[string]any{"jid": ExampleGroupID, "requested": false},
			Other:  map[int]map[string]any{202: {"description": "the group needs an admin's approval: a join request was sent", "content": map[string]any{"application/json": map[string]any{"schema": ref("JoinResult")}}}},
			Errors: []int{400, 404, 409, 501}},
		{Method: "GET", Path: "/v1/accounts/{id}/groups/{groupId}/requests", Summary: "Pending requests to join a group that needs approval (admins)", Tag: "groups", PathExamples: grp,
			Status: 200, Response: obj(map[string]any{"requests": arr(ref("JoinRequest"))}, "requests"), ResponseEx: map[string]any{"requests": []any{}}, Errors: []int{403, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups/{groupId}/requests", Summary: "Approve or reject join requests (admins): the result for each", Tag: "groups", PathExamples: grp,
			BodyType: "application/json", BodySchema: ref("ParticipantsRequest"),
			BodyExamples: map[string]any{"reject": map[string]any{"action": "reject", "participants": []string{"+15550001111"}}},
			Status:       200, Response: obj(map[string]any{"results": arr(ref("ParticipantResult"))}, "results"),
			ResponseEx: map[string]any{"results": []any{map[string]any{"jid": "15550001111@s.whatsapp.net", "status": "failed"}}}, Errors: []int{400, 403, 404, 409, 501}},
		{Method: "POST", Path: "/v1/accounts/{id}/groups/{groupId}/leave", Summary: "Leave the group", Tag: "groups", PathExamples: grp,
			Status: 204, Errors: []int{404, 409, 501}},
		{Method: "GET", Path: "/v1/media/{mediaId}", Summary: "Download media (HTTP ranges, ETag)", Tag: "media",
			PathExamples: map[string]string{"mediaId": ExampleMediaID},
			Status:       200, ResponseRaw: "*/*", Errors: []int{404},
			Other: map[int]map[string]any{
				206: {"description": "the requested range (several: multipart/byteranges)", "content": map[string]any{"*/*": map[string]any{"schema": map[string]any{"type": "string"}}}},
				304: {"description": "Not Modified (If-None-Match names its ETag)"},
				307: {"description": "media the archive keeps in S3 with presign_ttl set: a pre-signed URL of the object (Location), valid that long",
					"headers": map[string]any{"Location": map[string]any{"schema": map[string]any{"type": "string"}}}},
				412: {"description": "Precondition Failed (If-Match)"},
				416: {"description": "Range Not Satisfiable", "content": map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}},
			}},
		{Method: "POST", Path: "/v1/media/archive", Summary: "Queue media archiving for an account's stored media messages (backfill; 409 when no media archive is configured)", Tag: "media",
			BodyType: "application/json", BodySchema: obj(map[string]any{
				"account": str("the account whose media messages to archive"),
				"since":   str("only messages with a timestamp at or after this (RFC 3339); absent: all"),
			}, "account"),
			BodyExamples: map[string]any{"an account's media since a date": map[string]any{"account": ExampleAccount, "since": "2026-01-01T00:00:00Z"}},
			Status:       202, Response: obj(map[string]any{
				"target":  str("the outbox target the jobs went to (mediaarchive)"),
				"matched": integer("media messages the filter selected"),
				"queued":  integer("of them not archived yet: queued, or already queued (job ids are the pipeline's)"),
			}, "target", "matched", "queued"),
			ResponseEx: map[string]any{"target": "mediaarchive", "matched": 1, "queued": 1},
			Errors:     []int{400, 404, 409, 415}},

		{Method: "GET", Path: "/v1/deliveries", Summary: "Outbox jobs (one per event and sink), newest first, with their attempt logs", Tag: "pipeline",
			Query: "sink=" + ExampleSink + "&limit=20",
			Params: append([]map[string]any{
				queryParam("state", "string", "pending, processing, done or deadletter"),
				queryParam("sink", "string", "the sink target"),
				queryParam("eventId", "string", ""),
				queryParam("accountId", "string", ""),
				queryParam("since", "string", "enqueued at or after: RFC 3339 or Unix seconds"),
			}, limitCursor...),
			Status: 200, Response: ref("DeliveryPage"), ResponseEx: map[string]any{"deliveries": []any{deliveryExample}, "nextCursor": nil}, Errors: []int{400}},
		{Method: "GET", Path: "/v1/deliveries/{id}", Summary: "One outbox job", Tag: "pipeline",
			PathExamples: map[string]string{"id": ExampleDeliveryID},
			Status:       200, Response: ref("Delivery"), ResponseEx: deliveryExample, Errors: []int{404}},
		{Method: "POST", Path: "/v1/deliveries/{id}/retry", Summary: "Queue a done or dead-lettered job again, due now", Tag: "pipeline",
			PathExamples: map[string]string{"id": ExampleDeliveryID},
			Status:       200, Response: ref("Delivery"), ResponseEx: retriedExample(), Errors: []int{404, 409}},
		{Method: "GET", Path: "/v1/events", Summary: "Live events as Server-Sent Events (id: event id, event: kind, data: the event as JSON), after the pipeline. Reconnect with Last-Event-ID to resume", Tag: "pipeline",
			Query: "kinds=message.received&accounts=" + ExampleAccount,
			Params: []map[string]any{
				queryParam("kinds", "string", "comma-separated event kinds or patterns (message.*)"),
				queryParam("accounts", "string", "comma-separated account ids"),
				queryParam("chat", "string", "comma-separated chat kinds: user, group, broadcast, status"),
				queryParam("sources", "string", "comma-separated sources; default all (phone, api, rule, plugin, history)"),
				queryParam("fromMe", "boolean", ""),
				queryParam("hasMedia", "boolean", ""),
				queryParam("lastEventId", "string", "resume after this event id, for clients that cannot send the Last-Event-ID header"),
			},
			Status: 200, ResponseRaw: "text/event-stream", Errors: []int{400}},
		{Method: "GET", Path: "/v1/plugins", Summary: "The plugins declared in config.yaml: version, capabilities, state, restarts, last error, call counters", Tag: "pipeline",
			Status: 200, Response: obj(map[string]any{"plugins": arr(ref("Plugin"))}, "plugins"), ResponseEx: map[string]any{"plugins": []any{pluginExample}}},
		{Method: "POST", Path: "/v1/deliveries/replay", Summary: "Queue again every job matching a filter (default: dead letters)", Tag: "pipeline",
			BodyType: "application/json", BodySchema: obj(map[string]any{
				"state": str("deadletter (default) or done"), "sink": str(""), "eventId": str(""), "accountId": str(""),
				"since": str("enqueued at or after (RFC 3339)"),
			}),
			BodyExamples: map[string]any{"dead letters of a sink": map[string]any{"sink": ExampleSink, "since": "2026-11-25T00:00:00Z"}},
			Status:       200, Response: obj(map[string]any{"count": integer("jobs queued again")}, "count"), ResponseEx: map[string]any{"count": 0},
			Errors: []int{400, 415}},

		{Method: "POST", Path: "/v1/webhooks", Summary: "Register a webhook endpoint; the answer shows its signing secret, the only one that does", Tag: "webhooks",
			BodyType: "application/json", BodySchema: ref("WebhookInput"),
			BodyExamples: map[string]any{"crm": map[string]any{"id": ExampleWebhook, "url": ExampleWebhookURL, "events": []string{"message.received", "message.status"},
				"accounts": []string{ExampleAccount}, "description": "CRM inbox", "headers": map[string]string{"X-Api-Key": "k1"}, "enabled": true}},
			Status: 201, Response: ref("Webhook"), ResponseEx: withFields(webhookExample, map[string]any{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="}),
			Errors: []int{400, 409, 415}},
		{Method: "GET", Path: "/v1/webhooks", Summary: "List webhook endpoints", Tag: "webhooks",
			Status: 200, Response: obj(map[string]any{"webhooks": arr(ref("Webhook"))}, "webhooks"), ResponseEx: map[string]any{"webhooks": []any{webhookExample}}},
		{Method: "GET", Path: "/v1/webhooks/{id}", Summary: "Read a webhook endpoint (its health included)", Tag: "webhooks", PathExamples: map[string]string{"id": ExampleWebhook},
			Status: 200, Response: ref("Webhook"), ResponseEx: webhookExample, Errors: []int{404}},
		{Method: "PATCH", Path: "/v1/webhooks/{id}", Summary: "Change some fields; enabled: true re-enables a disabled endpoint (nothing is replayed by itself)", Tag: "webhooks",
			PathExamples: map[string]string{"id": ExampleWebhook},
			BodyType:     "application/json", BodySchema: ref("WebhookInput"),
			BodyExamples: map[string]any{"filter and rate": map[string]any{"events": []string{"message.*"}, "sources": []string{"phone", "api"}, "rateLimit": 10}},
			Status:       200, Response: ref("Webhook"), ResponseEx: withFields(webhookExample, map[string]any{"events": []string{"message.*"}, "sources": []string{"phone", "api"}, "rateLimit": 10}),
			Errors: []int{400, 404, 415}},
		{Method: "POST", Path: "/v1/webhooks/{id}/rotate-secret", Summary: "A new signing secret; the old one keeps signing, alongside, for 24 hours", Tag: "webhooks",
			PathExamples: map[string]string{"id": ExampleWebhook},
			Status:       200, Response: ref("Webhook"),
			ResponseEx: withFields(webhookExample, map[string]any{"secret": "whsec_bmV3IHNlY3JldCBieXRlcyBmb3IgdGhlIGV4YW1wbGUh", "previousSecretExpiresAt": "2026-11-26T12:05:00Z"}),
			Errors:     []int{404}},
		{Method: "POST", Path: "/v1/webhooks/{id}/test", Summary: "Send a webhook.test event now (outside the outbox) and answer the attempt, whatever the receiver said", Tag: "webhooks",
			PathExamples: map[string]string{"id": ExampleWebhook},
			Status:       200, Response: ref("WebhookAttempt"),
			ResponseEx: map[string]any{"at": "2026-11-25T12:05:00Z", "durationMs": 84, "result": "ok", "status": 200, "error": "", "response": "{\"received\":true}"},
			Errors:     []int{404}},
		{Method: "DELETE", Path: "/v1/webhooks/{id}", Summary: "Delete a webhook endpoint (its queued jobs stay in the outbox, undelivered)", Tag: "webhooks",
			PathExamples: map[string]string{"id": ExampleWebhook},
			Status:       204, Errors: []int{404}},

		{Method: "POST", Path: "/v1/keys", Summary: "Create an API key; the answer shows its token (key), the only one that does (admin)", Tag: "keys",
			BodyType: "application/json", BodySchema: ref("KeyInput"),
			BodyExamples: map[string]any{"crm": map[string]any{"id": ExampleKey, "name": "CRM", "scopes": []string{"messages:read", "messages:send"}, "accounts": []string{ExampleAccount}}},
			Status:       201, Response: ref("Key"), ResponseEx: withFields(keyExample, map[string]any{"key": "wck_" + ExampleKey + "_" + strings.Repeat("3f", 32)}),
			Errors: []int{400, 409, 415}},
		{Method: "GET", Path: "/v1/keys", Summary: "List API keys (never their tokens) (admin)", Tag: "keys",
			Status: 200, Response: obj(map[string]any{"keys": arr(ref("Key"))}, "keys"), ResponseEx: map[string]any{"keys": []any{keyExample}}},
		{Method: "GET", Path: "/v1/keys/{keyId}", Summary: "Read an API key (admin)", Tag: "keys", PathExamples: map[string]string{"keyId": ExampleKey},
			Status: 200, Response: ref("Key"), ResponseEx: keyExample, Errors: []int{404}},
		{Method: "POST", Path: "/v1/keys/{keyId}/rotate", Summary: "A new token for the key; the old one stops working at once (admin)", Tag: "keys",
			PathExamples: map[string]string{"keyId": ExampleKey},
			Status:       200, Response: ref("Key"),
			ResponseEx: withFields(keyExample, map[string]any{"key": "wck_" + ExampleKey + "_" + strings.Repeat("a1", 32), "rotatedAt": "2026-11-25T12:10:00Z"}),
			Errors:     []int{404}},
		{Method: "DELETE", Path: "/v1/keys/{keyId}", Summary: "Revoke an API key: the next request with it fails (admin)", Tag: "keys",
			PathExamples: map[string]string{"keyId": ExampleKey},
			Status:       204, Errors: []int{404}},

		{Method: "POST", Path: "/v1/accounts/{id}/logout", Summary: "Unlink the phone (the account stays, logged_out)", Tag: "accounts", PathExamples: acct,
			Status: 200, Response: ref("Account"), ResponseEx: withFields(accountExample, map[string]any{"state": "logged_out", "reason": "logged out over the API"}), Errors: []int{404, 409}},
		{Method: "DELETE", Path: "/v1/accounts/{id}", Summary: "Delete an account (?purge=true also deletes its messages)", Tag: "accounts", PathExamples: newAcct,
			Params: []map[string]any{queryParam("purge", "boolean", "delete the account's messages and chats too")},
			Status: 204, Errors: []int{404}},
	}
}

func withFields(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// eventMessageProps are the fields of a WhatsApp message, shared by the
// stored Message and an event's EventMessage.
var eventMessageProps = map[string]any{
	"accountId": str(""), "messageId": str("WhatsApp's id"), "chatId": str("the chat JID"), "from": str("the sender's JID"),
	"fromMe": boolean(""), "timestamp": integer("Unix seconds"),
	"type":     str("text, image, video, gif, ptv, audio, voice, document, sticker, location, live_location, contact, contacts, reaction, poll, poll_vote, edit, revoke, protocol or unknown"),
	"text":     str("text or caption"),
	"hasMedia": boolean(""), "mediaUrl": str("/v1/media/{mediaId} when stored here"),
	"chatLid": str(""), "chatPn": str(""), "fromLid": str(""), "fromPn": str(""), "pushName": str(""),
	"quoted": ref("Quoted"), "mentions": arr(str("JID")),
	"media": ref("WhatsAppMedia"), "location": ref("Location"), "contacts": arr(ref("SharedContact")),
	"poll": ref("Poll"), "pollVote": ref("PollVote"), "linkPreview": ref("LinkPreview"),
	"isGroup": boolean(""), "isBroadcast": boolean(""), "isStatus": boolean("posted to status@broadcast"),
	"isEphemeral": boolean(""), "isViewOnce": boolean(""), "isForwarded": boolean(""),
	"edited": boolean("a later message.edited changed it"), "revoked": boolean("deleted for everyone"),
}

// eventMessageRequired are the message fields always present.
var eventMessageRequired = []string{"accountId", "messageId", "chatId", "from", "fromMe", "timestamp", "type", "hasMedia",
	"isGroup", "isBroadcast", "isStatus", "isEphemeral", "isViewOnce", "isForwarded", "edited", "revoked"}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// stringMap is an object of string values under any names.
func stringMap(desc string) map[string]any {
	return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": desc}
}

var schemas = map[string]any{
	"KeyInput": obj(map[string]any{
		"id":        str("optional: 1-32 of a-z, 0-9 and -; generated when absent"),
		"name":      str("shown in the access log; 1-100 characters"),
		"scopes":    arr(str("admin, accounts:read, accounts:write, messages:read, messages:send, webhooks:manage, rules:manage, plugins:read, events:read, groups:read or groups:manage")),
		"accounts":  arr(str("account id; empty or absent: every account")),
		"expiresAt": str("RFC 3339, in the future; absent: never"),
	}, "name", "scopes"),
	"Key": obj(map[string]any{
		"id": str("the public part of the token"), "name": str(""), "scopes": arr(str("")), "accounts": arr(str("empty: every account")),
		"expiresAt": str("RFC 3339"), "createdAt": str("RFC 3339"), "rotatedAt": str("RFC 3339"),
		"key": str("the token, wck_<id>_<secret>: only in the answers of create and rotate"),
	}, "id", "name", "scopes", "accounts", "createdAt"),
	"Problem": obj(map[string]any{
		"type": str("urn:wildcat:problem:<slug>"), "title": str(""), "status": integer(""), "detail": str(""),
		"instance": str("the request path"), "field": str("the request field at fault (e.g. to, media.url, cursor)"), "requestId": str(""),
	}, "type", "title", "status"),
	"CreateAccount": obj(map[string]any{"id": str("1–63 of a-z, 0-9, _ and -"), "driver": str("whatsapp or sim"), "name": str(""),
		"proxy": str(proxyDoc)}, "id", "driver"),
	"UpdateAccount": obj(map[string]any{"proxy": str(proxyDoc + "; \"\" returns the account to drivers.whatsapp.proxy")}, "proxy"),
	"Account": obj(map[string]any{
		"id": str(""), "driver": str(""), "name": str(""), "state": str("created, pairing, connected, disconnected or logged_out"),
		"reason": str("why it entered the state"), "jid": str(""), "pushName": str(""), "lastError": str(""),
		"since": str("RFC 3339"), "createdAt": str("RFC 3339"), "driverAvailable": boolean(""),
		"proxy":    str("the account's own proxy, password masked (socks5://user:***@host:1080); \"\" when it uses drivers.whatsapp.proxy"),
		"instance": str("GET /v1/accounts/{id} only: the instance (GET /v1/instances) running the account's session; empty while none does (its lease is moving)"),
	}),
	"Instance": obj(map[string]any{
		"id": str("the daemon's instance id (\"local\" on the embedded engine)"), "url": str("where the other daemons forward calls that need its accounts' sessions (cluster.advertise_url)"),
		"version": str("wildcatd version"), "startedAt": str("RFC 3339"), "heartbeatAt": str("its last heartbeat (RFC 3339)"),
		"accounts": arr(str("account ids whose lease it holds")), "self": boolean("the daemon answering"),
	}, "id", "url", "version", "startedAt", "heartbeatAt", "accounts", "self"),
	"SimInbound": obj(map[string]any{
		"from": str("the contact's number"), "pushName": str(""), "id": str("fixes the message id"), "timestamp": integer("Unix seconds"),
		"text": str(""), "media": map[string]any{"type": "object"}, "location": map[string]any{"type": "object"},
		"reaction": map[string]any{"type": "object"}, "replyTo": str("a message id"),
		"vote": obj(map[string]any{
			"pollId":  str("a poll stored for the account, in a chat with the contact or a group both are in"),
			"options": arr(str("names of the poll's options; none withdraws the contact's vote")),
		}, "pollId"),
		"group": str("a group (…@g.us) the contact writes in; they must be a participant, and every sim member receives it"),
	}, "from"),
	"Media": obj(map[string]any{
		"mediaId": str("SHA-256 of the bytes, hex"), "sha256": str(""), "size": integer("bytes"), "mimetype": str(""),
		"filename": str(""), "url": str("/v1/media/{mediaId}"),
	}),
	"SendRequest": obj(map[string]any{
		"to":   str("phone number (E.164) or JID; optional for reaction, edit and revoke"),
		"text": str(""), "caption": str("for media"), "replyTo": str("id of a stored message to quote"),
		"mentions": arr(str("phone number or JID")),
		"media": obj(map[string]any{
			"mediaId": str("an upload"), "url": str("fetched by the daemon (public addresses only)"), "data": str("base64"),
			"mimetype": str(""), "filename": str(""), "kind": str("image, video, gif, audio, voice, document or sticker; default from the mimetype"),
			"seconds": integer("duration"),
		}),
		"reaction": obj(map[string]any{"messageId": str(""), "emoji": str("empty removes it")}, "messageId"),
		"location": obj(map[string]any{"lat": num(""), "lng": num(""), "name": str(""), "address": str(""), "url": str("")}, "lat", "lng"),
		"contact":  ref("ContactCard"),
		"contacts": arr(ref("ContactCard")),
		"edit":     obj(map[string]any{"messageId": str("one of ours"), "text": str("")}, "messageId", "text"),
		"revoke":   obj(map[string]any{"messageId": str("")}, "messageId"),
		"poll": obj(map[string]any{
			"name":            str("the question, 1 to 255 characters"),
			"options":         arr(str("2 to 12 distinct options of 1 to 100 characters")),
			"selectableCount": integer("how many options a voter may pick, 0 (default) to the number of options; 0: any number"),
		}, "name", "options"),
		"statusRecipients": arr(str("phone number or user JID: who sees a status post (to: status@broadcast); required for one")),
		"mentionAll":       boolean("mention every participant of the group the text or media goes to"),
	}),
	"ContactCard": obj(map[string]any{"name": str(""), "phone": str("written into a vCard"), "vcard": str("a vCard instead")}, "name"),
	"SendAccepted": obj(map[string]any{
		"id": str("{accountId}:{messageId}"), "messageId": str("WhatsApp's id, chosen before sending"), "status": str("pending"),
		"scheduledAt": map[string]any{"type": "string", "format": "date-time",
			"description": "when the message goes (RFC 3339): now, or later when the account's send pacing (send.pacing) makes it wait"},
	}, "id", "messageId", "status", "scheduledAt"),
	"Message": obj(merge(eventMessageProps, map[string]any{
		"id": str("{accountId}:{messageId}"), "rawMessage": str("base64 protobuf (single reads only)"),
		"kind": str("message.received, message.sent, …"), "source": str("phone, api, rule, plugin or history"),
		"status":      str("ours: pending, sent, delivered, read, played or failed"),
		"statusAt":    str("when status last changed (RFC 3339)"),
		"reaction":    ref("Reaction"),
		"editHistory": arr(obj(map[string]any{"text": str("the text before the edit"), "editId": str("the edit message's id"), "at": str("RFC 3339")}, "text", "editId", "at")),
		"editedAt":    str("RFC 3339"), "revokedBy": str("who deleted it for everyone"), "revokedAt": str("RFC 3339"),
		"mediaId": str(""),
		"mediaArchive": obj(map[string]any{
			"status": str("archived, skipped or expired"), "sha256": str(""), "size": integer(""),
			"targets": arr(str("gridfs or dir")), "reason": str("why it was skipped"), "at": str("RFC 3339"),
		}, "status", "at"),
		"error":       str("why it failed"),
		"tags":        arr(str("added by pipeline stages")),
		"annotations": stringMap("added by pipeline stages (annotate)"),
		"failures": arr(obj(map[string]any{
			"stage":    str("the pipeline stage whose action failed"),
			"action":   str("reply, send, react, markRead, tag or annotate"),
			"index":    integer("the action's position among the stage's actions for this message; one entry per stage and index, a re-run replaces it"),
			"origin":   str("who in the stage asked for it: the rule's name"),
			"error":    str("why it failed"),
			"attempts": integer("tries, more than one under onError retry"),
			"at":       str("RFC 3339"),
		}, "stage", "action", "index", "error", "attempts", "at")),
		"storedAt": str("RFC 3339"),
		"pollTally": obj(map[string]any{
			"options": arr(obj(map[string]any{
				"name": str(""), "hash": str("hex SHA-256 of name, as votes name it"), "votes": integer(""),
				"voters": arr(str("JIDs of those whose current vote includes it")),
			}, "name", "hash", "votes", "voters")),
			"voters": integer("how many have a vote counted; a later vote replaces a voter's earlier one, an empty one withdraws it"),
		}, "options", "voters"),
	}), append([]string{"id", "kind", "source", "storedAt"}, eventMessageRequired...)...),
	// EventMessage is the message payload of an event (webhook bodies, rule
	// inputs, a delivery's event).
	"EventMessage": obj(merge(eventMessageProps, map[string]any{"raw": str("base64 protobuf, as received")}), eventMessageRequired...),
	"Quoted": obj(map[string]any{
		"messageId": str(""), "participant": str("author of the quoted message"), "chatId": str("only when it is in another chat"),
		"type": str(""), "text": str(""),
	}, "messageId"),
	"WhatsAppMedia": obj(map[string]any{
		"mimetype": str(""), "size": integer("bytes"), "sha256": str("hex, of the plaintext"), "fileEncSha256": str("hex, of the ciphertext"),
		"mediaKey": str("base64"), "mediaKeyTimestamp": integer("Unix seconds"), "directPath": str(""), "url": str("WhatsApp's CDN, encrypted"),
		"filename": str(""), "caption": str(""), "durationSeconds": integer(""), "width": integer(""), "height": integer(""),
		"gif": boolean(""), "ptv": boolean(""), "voice": boolean("push-to-talk voice note"), "pageCount": integer(""), "isAnimated": boolean(""),
	}),
	"Location": obj(map[string]any{
		"lat": num(""), "lng": num(""), "name": str(""), "address": str(""), "url": str(""), "live": boolean(""),
		"accuracy": integer("meters"), "speed": num("meters per second"), "heading": integer("degrees clockwise from magnetic north"),
		"sequence": integer(""), "caption": str(""),
	}, "lat", "lng"),
	"SharedContact": obj(map[string]any{"displayName": str(""), "vcard": str("")}, "displayName", "vcard"),
	"Poll": obj(map[string]any{
		"name":            str(""),
		"options":         arr(obj(map[string]any{"name": str(""), "hash": str("hex SHA-256 of name")}, "name", "hash")),
		"selectableCount": integer("0: any number"),
	}, "name", "options", "selectableCount"),
	"PollVote": obj(map[string]any{
		"pollMessageId": str(""), "pollChatId": str(""), "pollCreator": str(""), "pollFromMe": boolean(""),
		"selectedOptions": arr(str("hex SHA-256 option hash")), "decrypted": boolean(""),
		"encPayload": str("base64"), "encIv": str("base64"), "senderTimestampMs": integer(""),
	}, "pollMessageId", "decrypted"),
	"Channel": obj(map[string]any{
		"jid": str("…@newsletter"), "name": str(""), "description": str(""), "subscribers": integer(""),
		"role": str("the account's role: subscriber, admin or owner"),
	}, "jid", "name", "subscribers", "role"),
	"LinkPreview": obj(map[string]any{"url": str(""), "title": str(""), "description": str("")}, "url"),
	"Reaction": obj(map[string]any{
		"targetId": str("the message reacted to"), "targetChatId": str(""), "targetSender": str(""), "targetFromMe": boolean(""),
		"emoji": str("empty: the reaction was removed"), "removed": boolean(""), "senderTimestampMs": integer(""),
	}, "targetId", "targetFromMe", "emoji", "removed"),
	"Event": obj(map[string]any{
		"id": str("deterministic: the same occurrence twice has the same id"), "kind": str("message.received, message.status, account.connected, …"),
		"accountId": str(""), "timestamp": str("RFC 3339"), "chatId": str(""), "source": str("phone, api, rule, plugin or history"),
		"message": ref("EventMessage"),
		"status": obj(map[string]any{
			"messageId": str(""), "status": str("server_ack, delivered, read or played"), "from": str("who produced the receipt"),
			"fromPn": str(""), "chatId": str(""), "self": boolean("read or played on another device of ours"), "messageSender": str(""),
		}, "messageId", "status", "chatId"),
		"reaction": ref("Reaction"),
		"edit": obj(map[string]any{
			"targetId": str(""), "text": str("the new text or caption"), "message": ref("EventMessage"), "editedAtMs": integer(""),
		}, "targetId", "text"),
		"revoke": obj(map[string]any{"targetId": str(""), "targetSender": str(""), "by": str(""), "admin": boolean("")}, "targetId", "by", "admin"),
		"account": obj(map[string]any{
			"state": str("pairing, connecting, connected, disconnected or logged_out"), "qrCode": str(""), "expiresAt": str("RFC 3339"),
			"pairingCode": str(""), "reason": str(""), "jid": str(""), "pushName": str(""),
		}, "state"),
		"presence": obj(map[string]any{"jid": str(""), "available": boolean(""), "lastSeen": str("RFC 3339")}, "jid", "available"),
		"typing":   obj(map[string]any{"chatId": str(""), "from": str(""), "fromPn": str(""), "state": str("composing, recording or paused")}, "chatId", "from", "state"),
		"group": obj(map[string]any{
			"jid": str(""), "actor": str(""), "actorPn": str(""), "name": str(""), "topic": str(""), "topicDeleted": boolean(""),
			"locked": boolean(""), "announce": boolean(""), "ephemeralSeconds": integer("0 turns the timer off"), "deleted": boolean(""),
			"inviteLink": str(""), "joinReason": str("invite, approved, …"),
			"actorLid": str(""), "pictureId": str("the new picture"), "pictureRemoved": boolean(""), "joinApproval": boolean(""),
			"added": arr(str("")), "left": arr(str("left on their own")), "removed": arr(str("removed by the actor")), "promoted": arr(str("")), "demoted": arr(str("")),
			"participants": arr(ref("GroupParticipant")),
			"self":         str("this account's own membership: added, joined, removed or left"),
			"info":         ref("Group"),
		}, "jid"),
		"history": obj(map[string]any{
			"type": str(""), "progress": integer("percent"), "chunkOrder": integer(""), "conversationCount": integer(""), "messageCount": integer(""),
		}, "type", "progress", "chunkOrder", "conversationCount", "messageCount"),
		"tags":        arr(str("")),
		"annotations": stringMap(""),
	}, "id", "kind", "accountId", "timestamp", "source"),
	"Stage": obj(map[string]any{
		"name":    str("unique"),
		"builtin": str("tag, annotate, reply, drop or log"), "sink": str("a sink target"),
		"rules": arr(str("glob")), "plugin": str(""),
		"mode": str("inline or sink (default: sink for sink stages)"),
		"match": obj(map[string]any{"kinds": arr(str("event kind or pattern")), "accounts": arr(str("")), "chat": arr(str("user, group, broadcast or status")),
			"fromMe": boolean(""), "sources": arr(str("phone, api, rule, plugin or history; empty: every source for sink stages, all but rule and plugin (the loop guard) for the others")), "hasMedia": boolean("")}),
		"timeout": integer("nanoseconds (config.yaml takes 5s)"), "onError": str("skip, retry or deadletter"),
		"config": map[string]any{"type": "object", "additionalProperties": true, "description": "the kind's options, e.g. {tag: vip}; for a rules stage one block per rule, keyed by rule name"},
	}, "name"),
	"Pipeline": obj(map[string]any{
		"generation": integer("increases with each reload"), "queued": integer("events submitted, not yet processed"),
		"activeChats": integer(""),
		"stages": arr(obj(map[string]any{
			"name": str(""), "kind": str(""), "mode": str(""), "target": str("sink stages"), "in": integer("events matched"),
			"actions": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "integer"}, "description": "count per action type"},
			"actionFailures": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "integer"},
				"description": "per action type, actions that could not be carried out (each recorded in its message's failures)"},
			"errors": integer("failed calls"), "timeouts": integer(""),
			"dropped": integer(""), "enqueued": integer(""), "deadLetters": integer(""), "calls": integer(""), "meanLatencyNs": integer(""),
		})),
	}),
	"Rule": obj(map[string]any{
		"stage": str("the rules stage running it"), "name": str("file name without .js: its kv namespace and config key"),
		"file": str(""), "version": str("12 hex digits of the running source's SHA-256; absent if no version ever loaded"),
		"loadedAt":  str("when the running version loaded (RFC 3339)"),
		"loadError": str("why the file on disk is not running (syntax error, throw at top level, bad config); the previous version runs"),
		"kinds":     arr(str("event kinds its handlers registered for")),
		"calls":     integer("handler calls"), "errors": integer("calls that threw"), "timeouts": integer("calls cut at their deadline"),
		"p99Ns": integer("99th percentile call time of the last 1024 calls, nanoseconds"),
	}, "name", "file", "calls", "errors", "timeouts", "p99Ns"),
	"Plugin": obj(map[string]any{
		"name": str("its key under plugins in config.yaml"), "path": str("the executable"),
		"plugin": str("the name the process reports"), "version": str(""), "description": str(""),
		"capabilities": arr(str("inline and/or sink")), "eventKinds": arr(str("the event kinds it asked for; none: all")),
		"state":     str("starting, running, restarting or stopped"),
		"protocol":  integer("plugin protocol version negotiated with the current process: 2 takes sink deliveries in batches (DeliverBatch), 1 one per call"),
		"pid":       integer("of the current process"),
		"startedAt": str("when the current process started (RFC 3339)"),
		"restarts":  integer("processes replaced after an exit or failed health checks"),
		"lastError": str(""), "lastErrorAt": str("RFC 3339"),
		"calls": obj(map[string]any{
			"handle":  obj(map[string]any{"calls": integer(""), "errors": integer(""), "timeouts": integer("cut at their deadline")}),
			"deliver": obj(map[string]any{"calls": integer(""), "errors": integer("attempts that did not end ok"), "timeouts": integer("")}),
		}),
	}, "name", "path", "capabilities", "state", "restarts", "calls"),
	"Delivery": obj(map[string]any{
		"id": str("{eventId}|{target}"), "eventId": str(""), "target": str("the sink"), "accountId": str(""),
		"state": str("pending, processing, done or deadletter"), "attempts": integer(""), "runAt": str("next attempt"),
		"firstAttemptAt": str(""), "leaseUntil": str(""), "owner": str("the daemon holding it"), "lastError": str(""),
		"createdAt": str(""), "updatedAt": str(""),
		"log": arr(obj(map[string]any{"at": str(""), "durationMs": integer(""), "result": str("ok, retry or fail"),
			"status": integer("response status"), "error": str(""), "response": str(""), "owner": str("")})),
		"event": withFields(ref("Event"), map[string]any{"description": "the event as the pipeline delivered it, tags included"}),
	}),
	"MessageTrace": obj(map[string]any{
		"messageId": str(""), "eventId": str("{accountId}:{messageId}"), "storedAt": str("when the trace was stored (the event's done mark)"),
		"trace":      ref("PipelineTrace"),
		"deliveries": arr(ref("Delivery")),
	}, "messageId", "eventId", "storedAt", "trace", "deliveries"),
	"PipelineTrace": obj(map[string]any{
		"eventId": str(""), "started": str("when the event entered the pipeline"), "durationMs": num("up to the done mark"),
		"deadLetteredAt": str("the stage the event was dead-lettered at"),
		"truncated":      boolean("strings or lists were cut to keep the trace small"),
		"stages": arr(obj(map[string]any{
			"name": str(""), "kind": str("rules, plugin, builtin or sink"),
			"startMs": num("after the trace's start"), "durationMs": num("with retries and carrying out the actions"),
			"outcome": str("ok, error, timeout, actionsFailed, dropped or skipped"),
			"skipped": str("why a stage did not run: match (its match did not select the event) or route (an earlier stage routed elsewhere)"),
			"error":   str("the stage's error"),
			"actions": arr(obj(map[string]any{
				"type": str("reply, send, drop, tag, annotate, route, react or markRead"), "origin": str("the rule that asked"),
				"tags": arr(str("")), "annotations": stringMap(""), "sinks": arr(str("")),
				"to": str("reply, send, react: the recipient"), "text": str("the message's text, cut"), "error": str("why the action failed"),
			})),
			"rules": arr(obj(map[string]any{
				"rule": str(""), "file": str(""), "durationMs": num(""), "effects": integer("actions the rule asked for (origin = rule)"),
				"error": str("what the rule threw"), "line": integer("line in file"), "timeout": boolean("cut at its deadline"),
			})),
			"targets": arr(str("outbox targets a sink stage made jobs for (job id {eventId}|{target})")),
		})),
	}, "eventId", "started", "durationMs", "stages"),
	"WebhookInput": obj(map[string]any{
		"id":          str("optional on create: 1-63 of a-z, 0-9, _ and -; generated (wh_…) when absent; cannot change"),
		"url":         str("http or https; loopback, private, link-local and metadata addresses are refused unless webhooks.allow_private_targets"),
		"events":      arr(str("event kind, family (message.*), webhook.disabled, or * (default)")),
		"accounts":    arr(str("account id or * (default)")),
		"sources":     arr(str("who caused the event: phone, api, rule, plugin, history, or * (default: every source, a rule's or plugin's replies included)")),
		"description": str(""),
		"headers":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "sent with every request; cannot override Content-Type, User-Agent or the webhook-* headers"},
		"enabled":     boolean("default true"), "rateLimit": num("deliveries per second, 0 (default) for no limit"),
		"batch":   boolean("default false: one POST per event; true: deliveries that are due together are posted as one JSON array of envelopes with one signature over the whole body (README: Webhooks)"),
		"ordered": boolean("default false; true: the events of one chat are delivered one at a time, in order, and a failing delivery holds back the later ones of its chat until it succeeds or is dead-lettered (README: Webhooks)"),
	}),
	"Webhook": obj(map[string]any{
		"id": str(""), "url": str(""), "events": arr(str("")), "accounts": arr(str("")), "sources": arr(str("phone, api, rule, plugin, history or *")), "description": str(""),
		"headers": stringMap(""), "enabled": boolean(""), "rateLimit": num(""), "batch": boolean("deliveries posted as one JSON array"), "ordered": boolean("per-chat order"), "source": str("api or config (config.yaml webhooks.endpoints)"),
		"secret":                  str("whsec_…: only in the answers of create and rotate-secret"),
		"previousSecretExpiresAt": str("until then the previous secret signs too"),
		"failingSince":            str("first failed attempt since the last success"),
		"disabledReason":          str(""), "disabledAt": str(""), "createdAt": str(""), "updatedAt": str(""),
	}, "id", "url", "events", "accounts", "sources", "enabled"),
	"WebhookAttempt": obj(map[string]any{
		"at": str("RFC 3339"), "durationMs": integer(""), "result": str("ok, retry or fail"), "status": integer("HTTP status, 0 if none"),
		"error": str("why it failed"), "response": str("the first 4 KiB of the response body"),
	}, "at", "durationMs", "result", "status", "error", "response"),
	"DeliveryPage": obj(map[string]any{"deliveries": arr(ref("Delivery")), "nextCursor": nullable("string")}, "deliveries", "nextCursor"),
	"MessagePage":  obj(map[string]any{"messages": arr(ref("Message")), "nextCursor": nullable("string")}, "messages", "nextCursor"),
	"CreateGroup": obj(map[string]any{
		"subject":      str("the group's name, 1 to 100 characters"),
		"participants": arr(str("phone number with country code, or user JID; 1 to 1023")),
	}, "subject", "participants"),
	"GroupUpdateRequest": obj(map[string]any{
		"subject": str("1 to 100 characters"), "description": str("up to 2048 characters; empty removes it"),
		"announce": boolean("only admins may send"), "locked": boolean("only admins may edit the group's info"),
		"joinApproval": boolean("joining by link needs an admin's approval"),
	}),
	"ParticipantsRequest": obj(map[string]any{
		"action":       str("participants: add, remove, promote or demote; requests: approve or reject"),
		"participants": arr(str("phone number with country code, or user JID; 1 to 1024")),
	}, "action", "participants"),
	"Group": obj(map[string]any{
		"jid": str("…@g.us"), "name": str("the subject"), "topic": str("the description"), "owner": str("the creator's JID"), "ownerPn": str(""),
		"createdAt": str("RFC 3339"), "locked": boolean("only admins may edit the info"), "announce": boolean("only admins may send"),
		"joinApproval": boolean("joining needs an admin's approval"), "ephemeralSeconds": integer("disappearing-messages timer"),
		"pictureId": str(""), "community": str("the parent community's JID"), "participants": arr(ref("GroupParticipant")),
	}, "jid", "name", "locked", "announce", "joinApproval", "participants"),
	"GroupParticipant": obj(map[string]any{
		"jid": str("as WhatsApp addresses them in the group"), "pn": str("phone-number JID, when known"), "lid": str("LID, when known"),
		"role": str("member, admin or superadmin"),
	}, "jid"),
	"ParticipantResult": obj(map[string]any{
		"jid":           str(""),
		"status":        str("ok, already_in, not_in_group, not_allowed, invite_required, not_on_whatsapp, group_full or failed"),
		"inviteCode":    str("with invite_required: an invite to send instead"),
		"inviteExpires": str("RFC 3339"),
	}, "jid", "status"),
	"InviteLink":  obj(map[string]any{"link": str("https://chat.whatsapp.com/<code>"), "code": str("")}, "link", "code"),
	"JoinResult":  obj(map[string]any{"jid": str("the group"), "requested": boolean("true: an admin must approve; a request was sent")}, "jid", "requested"),
	"JoinRequest": obj(map[string]any{"jid": str(""), "pn": str(""), "requestedAt": str("RFC 3339")}, "jid", "requestedAt"),
	"Chat": obj(map[string]any{
		"id": str("the chat JID"), "accountId": str(""), "chatPn": str(""), "chatLid": str(""), "name": str(""), "isGroup": boolean(""),
		"lastMessage":  map[string]any{"anyOf": []any{ref("ChatMessage"), map[string]any{"type": "null"}}},
		"lastActivity": integer("Unix seconds"), "unreadCount": integer(""),
		"messageCount": integer(""), "updatedAt": str(""),
	}, "id", "accountId", "name", "isGroup", "lastMessage", "lastActivity", "unreadCount", "messageCount", "updatedAt"),
	"ChatMessage": obj(map[string]any{
		"id": str("{accountId}:{messageId}"), "messageId": str(""), "from": str(""), "fromMe": boolean(""), "type": str(""),
		"text": str(""), "timestamp": integer("Unix seconds"),
	}, "id", "messageId", "from", "fromMe", "type", "timestamp"),
}

// Document is the OpenAPI 3.1 document.
func Document() map[string]any {
	paths := map[string]any{}
	for _, o := range Operations() {
		item, _ := paths[o.Path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[o.Path] = item
		}
		op := map[string]any{"summary": o.Summary, "tags": []string{o.Tag}, "operationId": operationID(o)}
		params := []any{}
		for _, name := range pathVars(o.Path) {
			p := pathParam(name, "")
			if ex, ok := o.PathExamples[name]; ok {
				p["example"] = ex
			}
			params = append(params, p)
		}
		for _, p := range o.Params {
			params = append(params, p)
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if o.BodyType != "" {
			exs := map[string]any{}
			for name, v := range o.BodyExamples {
				exs[name] = map[string]any{"value": v}
			}
			content := map[string]any{o.BodyType: map[string]any{"schema": o.BodySchema, "examples": exs}}
			if o.Path == "/v1/media" {
				content["multipart/form-data"] = map[string]any{"schema": obj(map[string]any{
					"file": map[string]any{"type": "string", "contentMediaType": "application/octet-stream"}}, "file")}
			}
			op["requestBody"] = map[string]any{"required": !o.BodyOptional, "content": content}
		}
		responses := map[string]any{}
		ok := map[string]any{"description": http.StatusText(o.Status)}
		switch {
		case o.Response != nil:
			mt := map[string]any{"schema": o.Response}
			if o.ResponseEx != nil {
				mt["example"] = o.ResponseEx
			}
			ok["content"] = map[string]any{"application/json": mt}
		case o.ResponseRaw == "*/*":
			ok["content"] = map[string]any{o.ResponseRaw: map[string]any{"schema": map[string]any{"type": "string", "description": "the bytes, with their own Content-Type"}}}
		case o.ResponseRaw != "":
			ok["content"] = map[string]any{o.ResponseRaw: map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": o.ResponseRaw}}}
		}
		if o.ResponseAlt != nil {
			content, _ := ok["content"].(map[string]any)
			ok["content"] = withFields(content, o.ResponseAlt)
		}
		responses[itoa(o.Status)] = ok
		for _, code := range problemStatuses(o) {
			responses[itoa(code)] = map[string]any{"description": http.StatusText(code),
				"content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
		}
		for code, r := range o.Other {
			responses[itoa(code)] = r
		}
		op["responses"] = responses
		item[strings.ToLower(o.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Wildcat",
			"version": "1",
			"description": "Self-hosted WhatsApp integration hub. Errors are RFC 9457 problem documents naming the offending field. " +
				"Rate-limited answers carry RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds until the bucket is full); a 429 also Retry-After.",
		},
		"servers": []any{map[string]any{"url": "http://127.0.0.1:8080"}},
		// Every route needs an API key (http.auth: false turns them off
		// for local development).
		"security": []any{map[string]any{"bearerAuth": []string{}}},
		"paths":    paths,
		"components": map[string]any{"schemas": schemas, "securitySchemes": map[string]any{
			"bearerAuth": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "wck_<id>_<secret>",
				"description": "Authorization: Bearer <key>. The first start writes an admin key to data_dir/admin.key."}}},
	}
}

// problemStatuses are the problem answers of o: its own, and those every
// route gives: 400 for a query string that does not decode (or, on routes
// taking none, any parameter), 401 without a usable key, 403 when the key
// lacks the route's scope or account and for a browser request from
// another site (Origin), 415 for a body that is not JSON, 421 for a Host
// the API does not answer to, 429 over a rate limit (http.rate_limits);
// and for a route with a body 408 when it is not received in time and 413
// when it is too large.
func problemStatuses(o Operation) []int {
	codes := append([]int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusUnsupportedMediaType,
		http.StatusMisdirectedRequest, http.StatusTooManyRequests}, o.Errors...)
	if o.BodyType != "" {
		codes = append(codes, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge)
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

func operationID(o Operation) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(o.Method))
	for _, seg := range strings.Split(strings.TrimPrefix(o.Path, "/v1/"), "/") {
		seg = strings.Trim(seg, "{}")
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '.' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func pathVars(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, strings.Trim(seg, "{}"))
		}
	}
	return out
}

func itoa(n int) string {
	const digits = "0123456789"
	return string([]byte{digits[n/100], digits[n/10%10], digits[n%10]})
}

// openapi answers GET /v1/openapi.json.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, Document())
}
