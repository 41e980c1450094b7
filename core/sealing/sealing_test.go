package sealing

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T, id string) Key {
	t.Helper()
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Secret: b}
}

func ring(t *testing.T, active string, keys ...Key) *Keyring {
	t.Helper()
	k, err := New(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	a, b := testKey(t, "a"), testKey(t, "b")
	ka := ring(t, "a", a)
	kab := ring(t, "b", a, b)
	var off *Keyring

	sealed, err := ka.Seal([]byte("secret marker"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret marker")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if id, ok := KeyOf(sealed); !ok || id != "a" {
		t.Fatalf("KeyOf = %q %v", id, ok)
	}
	// Rotation: a keyring with a and b reads a's values; it writes under b.
	for _, k := range []*Keyring{ka, kab} {
		if p, err := k.Open(sealed, nil); err != nil || string(p) != "secret marker" {
			t.Fatalf("Open = %q, %v", p, err)
		}
	}
	if !kab.Stale(sealed) || ka.Stale(sealed) {
		t.Fatal("Stale: a value under a is stale only when b is active")
	}
	// A keyring without a's key fails naming it.
	kb := ring(t, "b", b)
	if _, err := kb.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("Open without the key: %v", err)
	}
	if _, err := off.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open with encryption off: %v", err)
	}
	// A different secret under the same id fails authentication.
	wrong := ring(t, "a", testKey(t, "a"))
	if _, err := wrong.Open(sealed, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open with the wrong secret: %v", err)
	}
	// So does an altered value.
	alt := bytes.Clone(sealed)
	alt[len(alt)-1] ^= 1
	if _, err := ka.Open(alt, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open altered: %v", err)
	}
	// Plaintext written before encryption reads as it is, and is stale.
	if p, err := ka.Open([]byte("old plain"), nil); err != nil || string(p) != "old plain" {
		t.Fatalf("Open plaintext = %q, %v", p, err)
	}
	if !ka.Stale([]byte("old plain")) || off.Stale([]byte("old plain")) {
		t.Fatal("plaintext is stale exactly when encryption is on")
	}
	// A plaintext that looks like a sealed value is escaped when written
	// with encryption off, and reads back as itself.
	tricky := []byte(binMagic + "\x01\x01a0123456789012345678901234567890")
	esc, err := off.Seal(tricky, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*Keyring{off, ka} {
		if p, err := k.Open(esc, nil); err != nil || !bytes.Equal(p, tricky) {
			t.Fatalf("escaped Open = %q, %v", p, err)
		}
	}
}

func TestSealString(t *testing.T) {
	a, b := testKey(t, "a"), testKey(t, "b")
	ka, kab := ring(t, "", a), ring(t, "", a, b)
	var off *Keyring
	for _, s := range []string{"hello marker", "ünïcödé 🦊", strMagic + ":looks sealed", strMagic + "!escaped"} {
		for _, w := range []*Keyring{off, ka} {
			enc, err := w.SealString(s)
			if err != nil {
				t.Fatal(err)
			}
			if w.Enabled() && strings.Contains(enc, s) {
				t.Fatalf("sealed %q holds the plaintext: %q", s, enc)
			}
			for _, r := range []*Keyring{ka, kab} {
				if got, err := r.OpenString(enc); err != nil || got != s {
					t.Fatalf("OpenString(SealString(%q)) by %v = %q, %v", s, r.IDs(), got, err)
				}
			}
			if w.Enabled() && !kab.StaleString(enc) {
				t.Fatal("a value under a is stale when b is active")
			}
		}
	}
	if got, _ := ka.SealString(""); got != "" {
		t.Fatalf("empty string sealed to %q", got)
	}
	if _, err := ka.OpenString(strSealed + "!!!"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestSealedFileRanges(t *testing.T) {
	k := ring(t, "media-key", testKey(t, "media-key"))
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		plain := make([]byte, n)
		rand.Read(plain)
		var buf bytes.Buffer
		w, err := k.NewFileWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes cross chunk boundaries.
		for p := plain; len(p) > 0; {
			m := min(len(p), 1000+len(p)%7777)
			if _, err := w.Write(p[:m]); err != nil {
				t.Fatal(err)
			}
			p = p[m:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ct := buf.Bytes()
		if int64(len(ct)) != SealedSize(int64(n), len("media-key")) {
			t.Fatalf("n=%d: sealed %d bytes, SealedSize says %d", n, len(ct), SealedSize(int64(n), len("media-key")))
		}
		if n >= 32 && bytes.Contains(ct, plain[:32]) {
			t.Fatalf("n=%d: ciphertext holds plaintext", n)
		}
		r, err := k.OpenFile(bytes.NewReader(ct), int64(len(ct)))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		sum := sha256.Sum256(plain)
		if r.Size() != int64(n) || !bytes.Equal(r.SHA256(), sum[:]) {
			t.Fatalf("n=%d: size %d sha %x", n, r.Size(), r.SHA256())
		}
		all, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(all, plain) {
			t.Fatalf("n=%d: ReadAll %d bytes, %v", n, len(all), err)
		}
		// A range across a chunk boundary.
		if n > ChunkSize+10 {
			if _, err := r.Seek(ChunkSize-10, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 20)
			if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, plain[ChunkSize-10:ChunkSize+10]) {
				t.Fatalf("range read: %v", err)
			}
		}
		// Cut at a chunk boundary (meta moved up): refused, not shortened.
		if n > ChunkSize {
			cut := append(bytes.Clone(ct[:headerSize(len("media-key"))+ChunkSize+tagSize]), ct[len(ct)-metaSize:]...)
			r, err := k.OpenFile(bytes.NewReader(cut), int64(len(cut)))
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("truncated file: %v", err)
			}
		}
	}
	// Another key id: refused by name.
	var buf bytes.Buffer
	w, _ := k.NewFileWriter(&buf)
	w.Write([]byte("x"))
	w.Close()
	other := ring(t, "", testKey(t, "other"))
	if _, err := other.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len())); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "media-key") {
		t.Fatalf("OpenFile without the key: %v", err)
	}
}

func TestLoad(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	short := base64.StdEncoding.EncodeToString([]byte("short"))
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte("# keys\n2026a:"+k1+"\n\n2026b:"+k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("x:"+short+"\n"), 0o600)
	for _, tc := range []struct {
		name                string
		file, keys, active  string
		wantKey, wantActive string
		wantProblem         string
	}{
		{name: "off"},
		{name: "file, last active", file: file, wantActive: "2026b"},
		{name: "file, named active", file: file, active: "2026a", wantActive: "2026a"},
		{name: "env keys", keys: "k1:" + k1 + ",k2:" + k2, wantActive: "k2"},
		{name: "short key", keys: "k1:" + short, wantKey: KeysKey, wantProblem: `key "k1": has 5 bytes`},
		{name: "short key in file", file: bad, wantKey: KeyFileKey, wantProblem: `line 1: key "x": has 5 bytes`},
		{name: "not base64", keys: "k1:***", wantKey: KeysKey, wantProblem: "not base64"},
		{name: "no id", keys: k1, wantKey: KeysKey, wantProblem: "id:base64key"},
		{name: "unknown active", keys: "k1:" + k1, active: "k9", wantKey: ActiveKeyKey, wantProblem: `"k9" is not among`},
		{name: "duplicate", keys: "k1:" + k1 + ",k1:" + k2, wantKey: KeysKey, wantProblem: "listed twice"},
		{name: "missing file", file: filepath.Join(dir, "none"), wantKey: KeyFileKey, wantProblem: "read key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := Load(tc.file, tc.keys, tc.active)
			if tc.wantKey != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Key != tc.wantKey || !strings.Contains(ce.Problem, tc.wantProblem) {
					t.Fatalf("err = %v, want %s: …%s…", err, tc.wantKey, tc.wantProblem)
				}
				if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), k2) {
					t.Fatal("the error shows a key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kr.ActiveID() != tc.wantActive {
				t.Fatalf("active %q, want %q", kr.ActiveID(), tc.wantActive)
			}
		})
	}
}
