// Package sealing holds the keyring that encrypts data at rest: AES-256-GCM
// under named keys, one of them active for writing, all of them for
// reading, so a key is rotated by adding a new one and making it active.
//
// A sealed value says how it was sealed: a marker, a version byte, the id
// of its key and the nonce come before the ciphertext, so a value written
// before encryption was turned on (plaintext, no marker) reads as it is, a
// value under a key that is no longer configured fails with the key's id,
// and a tampered value fails authentication — never garbage.
//
// Binary values: "\x00wc" 0x01 len(id) id nonce(12) ciphertext+tag.
// Strings: "\x1bwc:" then the binary form in unpadded base64url. A
// plaintext that happens to begin with a marker is escaped when written
// ("\x00wc" 0x00 + plaintext; "\x1bwc!" + plaintext), so every value this
// package wrote reads back unambiguously, with or without keys.
//
// A nil *Keyring is the keyring with no keys: encryption off.
package sealing

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/wildcathub/wildcat/core/bounded"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

const (
	binMagic     = "\x00wc"
	verPlain     = 0x00
	verGCM       = 0x01
	strMagic     = "\x1bwc"
	strSealed    = strMagic + ":"
	strEscaped   = strMagic + "!"
	nonceSize    = 12
	maxKeyIDSize = 32
)

// Errors callers decide by; each is wrapped with the value's key id.
var (
	// ErrUnknownKey: the value was sealed under a key the keyring does not
	// hold (removed from the configuration too early, or a wrong key file).
	ErrUnknownKey = errors.New("sealed under a key that is not configured")
	// ErrAuth: the value does not authenticate under its key: the key with
	// that id is not the one it was sealed with, or the value was altered.
	ErrAuth = errors.New("sealed value does not authenticate (wrong key or altered data)")
	// ErrMalformed: a marker without a well-formed sealed value behind it.
	ErrMalformed = errors.New("malformed sealed value")
)

var keyIDShape = bounded.MustCompile(`^[A-Za-z0-9_.-]+$`, 1, 32)

// ValidKeyID reports whether id can name a key.
func ValidKeyID(id string) bool { return keyIDShape.MatchString(id) }

// Key is one named secret.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

type entry struct {
	id   string
	aead cipher.AEAD
	// media and addr are subkeys: media files' per-file keys are derived
	// from media; addr keys content addresses (HMAC), so an address does
	// not reveal the plaintext's hash.
	media, addr []byte
}

// Keyring holds the configured keys.
type Keyring struct {
	active *entry
	keys   map[string]*entry
	ids    []string
}

// New returns the keyring of keys with active the one that writes; active
// "" picks the last key listed. No keys: nil, encryption off.
func New(keys []Key, active string) (*Keyring, error) {
	if len(keys) == 0 {
		if active != "" {
			return nil, fmt.Errorf("active key %q is set but no keys are configured", active)
		}
		return nil, nil
	}
	k := &Keyring{keys: make(map[string]*entry, len(keys))}
	for _, key := range keys {
		if !ValidKeyID(key.ID) {
			return nil, fmt.Errorf("key id %q: want 1 to %d of A-Z a-z 0-9 _ . -", key.ID, maxKeyIDSize)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("key %q: has %d bytes, AES-256 needs %d", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.keys[key.ID]; dup {
			return nil, fmt.Errorf("key %q: listed twice", key.ID)
		}
		e, err := newEntry(key)
		if err != nil {
			return nil, err
		}
		k.keys[key.ID] = e
		k.ids = append(k.ids, key.ID)
	}
	if active == "" {
		active = k.ids[len(k.ids)-1]
	}
	k.active = k.keys[active]
	if k.active == nil {
		return nil, fmt.Errorf("active key %q is not among the configured keys (%s)", active, strings.Join(k.ids, ", "))
	}
	return k, nil
}

func newEntry(key Key) (*entry, error) {
	derive := func(purpose string) ([]byte, error) {
		return hkdf.Key(sha256.New, key.Secret, nil, "wildcat sealing v1 "+purpose, KeySize)
	}
	data, err := derive("data")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(data)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	e := &entry{id: key.ID, aead: aead}
	if e.media, err = derive("media"); err != nil {
		return nil, err
	}
	if e.addr, err = derive("address"); err != nil {
		return nil, err
	}
	return e, nil
}

// Enabled reports whether values are sealed when written.
func (k *Keyring) Enabled() bool { return k != nil && k.active != nil }

// ActiveID is the id of the key that seals ("" when off).
func (k *Keyring) ActiveID() string {
	if !k.Enabled() {
		return ""
	}
	return k.active.id
}

// IDs lists the configured key ids in configuration order.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.ids)
}

func (k *Keyring) lookup(id string) (*entry, error) {
	if k != nil {
		if e := k.keys[id]; e != nil {
			return e, nil
		}
	}
	return nil, fmt.Errorf("key %q: %w", id, ErrUnknownKey)
}

// Seal encrypts plain under the active key; with encryption off it returns
// plain (escaped if it begins with the marker). aad is bound to the value:
// Open must be given the same.
func (k *Keyring) Seal(plain, aad []byte) ([]byte, error) {
	if !k.Enabled() {
		if bytes.HasPrefix(plain, []byte(binMagic)) {
			out := make([]byte, 0, len(binMagic)+1+len(plain))
			return append(append(append(out, binMagic...), verPlain), plain...), nil
		}
		return plain, nil
	}
	e := k.active
	out := make([]byte, 0, len(binMagic)+2+len(e.id)+nonceSize+len(plain)+e.aead.Overhead())
	out = append(out, binMagic...)
	out = append(out, verGCM, byte(len(e.id)))
	out = append(out, e.id...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out = append(out, nonce...)
	return e.aead.Seal(out, nonce, plain, aad), nil
}

// Open returns the plaintext of a value Seal wrote, or of a value written
// before encryption was on (returned as it is).
func (k *Keyring) Open(b, aad []byte) ([]byte, error) {
	ver, id, rest, err := parse(b)
	if err != nil {
		return nil, err
	}
	switch ver {
	case -1:
		return b, nil
	case verPlain:
		return rest, nil
	}
	e, err := k.lookup(id)
	if err != nil {
		return nil, err
	}
	if len(rest) < nonceSize+e.aead.Overhead() {
		return nil, fmt.Errorf("key %q: %w: too short", id, ErrMalformed)
	}
	plain, err := e.aead.Open(nil, rest[:nonceSize], rest[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", id, ErrAuth)
	}
	return plain, nil
}

// parse splits a stored value: version -1 for plaintext without a marker,
// verPlain with rest the escaped plaintext, verGCM with the key id and
// rest nonce+ciphertext.
func parse(b []byte) (ver int, id string, rest []byte, err error) {
	if !bytes.HasPrefix(b, []byte(binMagic)) {
		return -1, "", nil, nil
	}
	b = b[len(binMagic):]
	if len(b) == 0 {
		return 0, "", nil, fmt.Errorf("%w: no version", ErrMalformed)
	}
	switch b[0] {
	case verPlain:
		return verPlain, "", b[1:], nil
	case verGCM:
	default:
		return 0, "", nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	if len(b) < 2 || len(b) < 2+int(b[1]) {
		return 0, "", nil, fmt.Errorf("%w: truncated key id", ErrMalformed)
	}
	n := int(b[1])
	return verGCM, string(b[2 : 2+n]), b[2+n:], nil
}

// KeyOf reports the id of the key b was sealed under; sealed is false for
// plaintext.
func KeyOf(b []byte) (id string, sealed bool) {
	ver, id, _, err := parse(b)
	if err != nil || ver != verGCM {
		return "", false
	}
	return id, true
}

// Stale reports whether b is not sealed under the active key: what
// re-encryption rewrites. With encryption off nothing is stale.
func (k *Keyring) Stale(b []byte) bool {
	if !k.Enabled() {
		return false
	}
	id, sealed := KeyOf(b)
	return !sealed || id != k.active.id
}

var b64 = base64.RawURLEncoding

// SealString is Seal for text columns and fields: the sealed form is text
// too. The empty string stays empty (it says nothing).
func (k *Keyring) SealString(s string) (string, error) {
	if !k.Enabled() {
		if strings.HasPrefix(s, strMagic) {
			return strEscaped + s, nil
		}
		return s, nil
	}
	if s == "" {
		return "", nil
	}
	b, err := k.Seal([]byte(s), nil)
	if err != nil {
		return "", err
	}
	return strSealed + b64.EncodeToString(b), nil
}

// OpenString is Open for SealString's values.
func (k *Keyring) OpenString(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, strEscaped):
		return s[len(strEscaped):], nil
	case !strings.HasPrefix(s, strSealed):
		return s, nil
	}
	b, err := b64.DecodeString(s[len(strSealed):])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, sealed := KeyOf(b); !sealed {
		return "", fmt.Errorf("%w: not a sealed value", ErrMalformed)
	}
	p, err := k.Open(b, nil)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// StaleString is Stale for SealString's values. The empty string is never
// stale: it is stored as it is.
func (k *Keyring) StaleString(s string) bool {
	if !k.Enabled() || s == "" {
		return false
	}
	if !strings.HasPrefix(s, strSealed) {
		return true
	}
	b, err := b64.DecodeString(s[len(strSealed):])
	if err != nil {
		return true
	}
	return k.Stale(b)
}

// AddressHash is the content address of plaintext under the active key:
// HMAC-SHA256 with a subkey of it. It de-duplicates like a hash but, unlike
// the plain SHA-256, tells nobody without the key whether a known file is
// stored. Only for an enabled keyring.
func (k *Keyring) AddressHash() hash.Hash { return hmac.New(sha256.New, k.active.addr) }

// IsSealedString reports whether s is a value SealString sealed.
func IsSealedString(s string) bool { return strings.HasPrefix(s, strSealed) }

// Escape marks s as plaintext: OpenString returns s, whatever it looks
// like. For envelopes that must be recognisable as such with encryption
// off too.
func Escape(s string) string { return strEscaped + s }
