package apikeys

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wildcathub/wildcat/core/accountid"
)

// Keyring creates and checks keys on a Store under a server secret.
type Keyring struct {
	store  Store
	secret []byte
	now    func() time.Time
}

// NewKeyring returns a keyring on store; secret keys the HMAC of every
// token (see LoadSecret). now is the clock (nil: time.Now).
func NewKeyring(store Store, secret []byte, now func() time.Time) *Keyring {
	if now == nil {
		now = time.Now
	}
	return &Keyring{store: store, secret: secret, now: now}
}

// Spec describes a key to create.
type Spec struct {
	// ID is optional: generated when empty.
	ID        string
	Name      string
	Scopes    []string
	Accounts  []string
	ExpiresAt *time.Time
}

func (k *Keyring) check(s *Spec) error {
	if s.ID != "" && !idPattern.MatchString(s.ID) {
		return &FieldError{"id", "must be 1-32 of a-z, 0-9 and -, starting with a letter or digit"}
	}
	if strings.TrimSpace(s.Name) == "" || utf8.RuneCountInString(s.Name) > 100 {
		return &FieldError{"name", "is required, at most 100 characters"}
	}
	if len(s.Scopes) == 0 {
		return &FieldError{"scopes", "must name at least one scope: " + strings.Join(AllScopes, ", ")}
	}
	for i, sc := range s.Scopes {
		if !slices.Contains(AllScopes, sc) {
			return &FieldError{fmt.Sprintf("scopes[%d]", i), fmt.Sprintf("%q is not one of %s", sc, strings.Join(AllScopes, ", "))}
		}
	}
	for i, a := range s.Accounts {
		if err := accountid.Check(a); err != nil {
			return &FieldError{fmt.Sprintf("accounts[%d]", i), err.Error()}
		}
	}
	if s.ExpiresAt != nil && !s.ExpiresAt.After(k.now()) {
		return &FieldError{"expiresAt", "must be in the future"}
	}
	return nil
}

// Create stores a new key and returns it with its token, which is shown
// this once: only its HMAC is stored.
func (k *Keyring) Create(ctx context.Context, s Spec) (*Key, string, error) {
	if err := k.check(&s); err != nil {
		return nil, "", err
	}
	if s.ID == "" {
		s.ID = randomHex(8)
	}
	secret := randomHex(32)
	key, err := k.create(ctx, s, secret)
	if err != nil {
		return nil, "", err
	}
	return key, token(key.ID, secret), nil
}

// create stores the key s describes with secret's hash.
func (k *Keyring) create(ctx context.Context, s Spec, secret string) (*Key, error) {
	now := k.now().UTC().Truncate(time.Millisecond)
	key := &Key{ID: s.ID, Name: s.Name, Scopes: slices.Compact(slices.Sorted(slices.Values(s.Scopes))), CreatedAt: now}
	if len(s.Accounts) > 0 {
		key.Accounts = slices.Compact(slices.Sorted(slices.Values(s.Accounts)))
	}
	if s.ExpiresAt != nil {
		t := s.ExpiresAt.UTC().Truncate(time.Millisecond)
		key.ExpiresAt = &t
	}
	key.Hash = k.hash(key.ID, secret)
	if err := k.store.Insert(ctx, key); err != nil {
		return nil, err
	}
	return key, nil
}

// Rotate gives key id a new secret; the old one stops at once.
func (k *Keyring) Rotate(ctx context.Context, id string) (*Key, string, error) {
	secret := randomHex(32)
	now := k.now().UTC().Truncate(time.Millisecond)
	if err := k.store.SetHash(ctx, id, k.hash(id, secret), now); err != nil {
		return nil, "", err
	}
	key, err := k.store.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return key, token(id, secret), nil
}

// Get reads one key.
func (k *Keyring) Get(ctx context.Context, id string) (*Key, error) { return k.store.Get(ctx, id) }

// List reads every key.
func (k *Keyring) List(ctx context.Context) ([]*Key, error) { return k.store.List(ctx) }

// Delete revokes a key: the next request with it fails.
func (k *Keyring) Delete(ctx context.Context, id string) error { return k.store.Delete(ctx, id) }

// Authenticate returns the key a token belongs to: ErrInvalid when it is
// malformed, unknown or its secret is wrong, ErrExpired when it expired.
// The comparison is constant-time; the lookup is by the token's public id.
func (k *Keyring) Authenticate(ctx context.Context, tok string) (*Key, error) {
	id, secret, ok := ParseToken(tok)
	if !ok {
		return nil, ErrInvalid
	}
	key, err := k.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(key.Hash, k.hash(id, secret)) {
		return nil, ErrInvalid
	}
	if key.Expired(k.now()) {
		return key, ErrExpired
	}
	return key, nil
}

// AdminKeyFile is the file under data_dir holding the first-start admin
// key, for scripts and the CLI.
const AdminKeyFile = "admin.key"

// BootstrapKeyID is the id of the admin key the first start creates
// (unless http.admin_key names another).
const BootstrapKeyID = "admin"

// Bootstrap creates an admin key when the store holds none, writes its
// token to adminFile (mode 0600) and returns it; "" when keys exist.
// provisioned, when set, is the token to use instead of a random one.
func (k *Keyring) Bootstrap(ctx context.Context, adminFile, provisioned string) (string, error) {
	n, err := k.store.Count(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	// A fixed id makes the first start idempotent across daemons sharing a
	// MongoDB database: when two start at once, one insert wins and the
	// other sees ErrExists instead of creating a second admin key.
	spec := Spec{ID: BootstrapKeyID, Name: "admin (created at first start)", Scopes: []string{ScopeAdmin}}
	var tok string
	if provisioned != "" {
		id, secret, ok := ParseToken(provisioned)
		if !ok {
			return "", &FieldError{"http.admin_key", "is not a key: wck_<id>_<64 hex digits>"}
		}
		spec.ID = id
		_, err = k.create(ctx, spec, secret)
		tok = provisioned
	} else {
		_, tok, err = k.Create(ctx, spec)
	}
	if errors.Is(err, ErrExists) {
		return "", nil // another daemon created it first
	}
	if err != nil {
		return "", fmt.Errorf("create the first admin key: %w", err)
	}
	if err := writeFile(adminFile, []byte(tok+"\n")); err != nil {
		return tok, fmt.Errorf("write the admin key: %w", err)
	}
	return tok, nil
}

func (k *Keyring) hash(id, secret string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

func token(id, secret string) string { return TokenPrefix + id + "_" + secret }

// secretLen is the hex length of a token's secret part (32 bytes).
const secretLen = 64

// ParseToken splits wck_<id>_<secret>.
func ParseToken(tok string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(tok, TokenPrefix)
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 0 {
		return "", "", false
	}
	id, secret = rest[:i], rest[i+1:]
	if !idPattern.MatchString(id) || len(secret) != secretLen {
		return "", "", false
	}
	if _, err := hex.DecodeString(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// ID returns a token's public key id, "" when it is not a token: what an
// access log may show of a key that failed.
func ID(tok string) string {
	id, _, _ := ParseToken(tok)
	return id
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SecretFile is the file under data_dir holding the server secret when
// http.auth_secret is not set.
const SecretFile = "server.secret"

// LoadSecret returns the HMAC secret: configured when set, else the
// contents of path, created (mode 0600, 32 random bytes) when missing.
func LoadSecret(configured, path string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("server secret %s is empty", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	s := randomHex(32)
	if err := writeFile(path, []byte(s+"\n")); err != nil {
		return nil, fmt.Errorf("create server secret: %w", err)
	}
	return []byte(s), nil
}

// writeFile writes path with mode 0600, its
// directory 0700 if missing.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
