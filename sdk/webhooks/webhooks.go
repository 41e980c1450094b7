// Package webhooks signs and verifies Wildcat's webhook requests, which
// follow the Standard Webhooks specification (https://www.standardwebhooks.com):
//
//   - webhook-id: the event id, the same on every retry of one event — use it
//     to drop duplicates;
//   - webhook-timestamp: when the attempt was signed, in Unix seconds;
//   - webhook-signature: "v1,<base64 HMAC-SHA256>" of "{id}.{timestamp}.{body}",
//     keyed with the secret's bytes; several space-separated signatures
//     while a rotated secret is still valid — any one matching is enough.
//
// A secret is "whsec_" followed by the base64 of its key bytes, as returned
// by POST /v1/webhooks. A Go receiver calls Verify with the raw body before
// decoding it:
//
//	body, _ := io.ReadAll(r.Body)
//	if err := webhooks.Verify(secret, r.Header, body); err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// Receivers in other languages use the Standard Webhooks libraries
// (standardwebhooks on npm and PyPI, ...) with the same secret.
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret.
const SecretPrefix = "whsec_"

// Tolerance is how far a webhook's timestamp may be from the receiver's
// clock, either way, before Verify refuses it (replay protection).
const Tolerance = 5 * time.Minute

// Errors Verify returns (wrapped); errors.Is tells them apart.
var (
	ErrSecret     = errors.New("webhook secret is not whsec_ followed by base64")
	ErrHeaders    = errors.New("webhook-id, webhook-timestamp or webhook-signature header missing")
	ErrTimestamp  = errors.New("webhook timestamp outside the tolerance")
	ErrSignature  = errors.New("no webhook signature matches")
	ErrSecretSize = errors.New("webhook secret key must be 24 to 64 bytes")
)

// NewSecret returns a fresh random secret: "whsec_" and 32 random bytes in
// base64.
func NewSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go ≥ 1.24)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// DecodeSecret returns the key bytes of a secret. The prefix is optional,
// as in the specification's libraries.
func DecodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, ErrSecret
	}
	return key, nil
}

// ValidSecret checks a secret an operator supplies (config.yaml): whsec_,
// base64, 24 to 64 key bytes.
func ValidSecret(secret string) error {
	if !strings.HasPrefix(secret, SecretPrefix) {
		return ErrSecret
	}
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	if len(key) < 24 || len(key) > 64 {
		return ErrSecretSize
	}
	return nil
}

// Sign returns the signature of one request, "v1,<base64>".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := DecodeSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

// SignAll signs with every secret and joins the signatures with spaces, the
// webhook-signature header's value while a rotated secret is still valid.
func SignAll(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte("."))
	h.Write([]byte(strconv.FormatInt(unix, 10)))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks that body, with headers, was signed with secret and is
// fresh (its timestamp within Tolerance of now). body must be the raw
// request body, byte for byte.
func Verify(secret string, headers http.Header, body []byte) error {
	return VerifyAt(secret, headers, body, time.Now())
}

// VerifyAt is Verify with the receiver's clock reading now.
func VerifyAt(secret string, headers http.Header, body []byte, now time.Time) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := headers.Get(HeaderID), headers.Get(HeaderTimestamp), headers.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrHeaders
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, tsText)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: signed %s from now", ErrTimestamp, d.Round(time.Second))
	}
	want := mac(key, id, unix, body)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(got, want) == 1 {
			return nil
		}
	}
	return ErrSignature
}
