package bounded_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/wildcathub/wildcat/core/bounded"
)

// shapes pairs each counted pattern the code base used with the bounded
// form that replaced it; they must accept exactly the same strings.
var shapes = []struct {
	counted string
	expr    string
	min     int
	max     int
}{
	{`^[a-z0-9][a-z0-9_-]{0,62}$`, `^[a-z0-9][a-z0-9_-]*$`, 1, 63},  // account, webhook, plugin ids
	{`^[A-Za-z0-9_.-]{1,32}$`, `^[A-Za-z0-9_.-]+$`, 1, 32},          // sealing key ids
	{`^[\x21-\x7e]{1,255}$`, `^[\x21-\x7e]+$`, 1, 255},              // Idempotency-Key
	{`^[A-Za-z0-9._:-]{1,128}$`, `^[A-Za-z0-9._:-]+$`, 1, 128},      // X-Request-Id
	{`^[A-Za-z0-9._-]{1,128}$`, `^[A-Za-z0-9._-]+$`, 1, 128},        // message ids
	{`^[A-Za-z0-9_-]{8,64}$`, `^[A-Za-z0-9_-]+$`, 8, 64},            // invite codes
	{`^[0-9a-f]{64}$`, `^[0-9a-f]+$`, 64, 64},                       // media ids, sums
	{`^[0-9a-fA-F]{64}$`, `^[0-9a-fA-F]+$`, 64, 64},                 // plugin sha256
	{`^[a-z0-9][a-z0-9-]{0,31}$`, `^[a-z0-9][a-z0-9-]*$`, 1, 32},    // API key ids
	{`^[0-9]{12}:[^\x00]{1,256}$`, `^[0-9]{12}:[^\x00]+$`, 14, 269}, // history sort keys
}

// TestSameLanguage checks each bounded form against its counted pattern on
// strings around the bounds, built from the pattern's own characters and
// from characters it refuses (NUL, spaces, non-ASCII, invalid UTF-8).
func TestSameLanguage(t *testing.T) {
	alphabet := []string{"a", "z", "0", "9", "_", "-", ".", ":", "A", "F", "f", "g", "!", "~", " ", "\x00", "é", "€", "\xff", "\x7f", "/"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		t.Run(s.counted, func(t *testing.T) {
			want := regexp.MustCompile(s.counted)
			got := bounded.MustCompile(s.expr, s.min, s.max)
			check := func(in string) {
				t.Helper()
				if w, g := want.MatchString(in), got.MatchString(in); w != g {
					t.Fatalf("%q (%d bytes): counted pattern %v, bounded %v", in, len(in), w, g)
				}
			}
			accepted := 0
			for n := 0; n <= s.max+3; n++ {
				for _, fill := range alphabet {
					for _, head := range []string{"", "a", "7", "123456789012:", "-"} {
						in := head + strings.Repeat(fill, n)
						check(in)
						if want.MatchString(in) {
							accepted++
						}
					}
				}
				// Random strings of this length, mostly of allowed characters.
				for range 20 {
					var b strings.Builder
					if strings.Contains(s.counted, "{12}:") {
						b.WriteString("202611250000:")
					}
					for range n {
						b.WriteString(alphabet[rng.IntN(len(alphabet))])
					}
					check(b.String())
				}
			}
			if accepted == 0 {
				t.Fatalf("no generated string matched %s: the comparison proves nothing", s.counted)
			}
		})
	}
}

// FuzzSameLanguage compares every shape on arbitrary input.
func FuzzSameLanguage(f *testing.F) {
	f.Add("demo")
	f.Add("202611250000:3EB0C0FFEE000001")
	f.Add(strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, in string) {
		for _, s := range shapes {
			w := regexp.MustCompile(s.counted).MatchString(in)
			if g := bounded.MustCompile(s.expr, s.min, s.max).MatchString(in); w != g {
				t.Fatalf("%q: %s says %v, bounded %v", in, s.counted, w, g)
			}
		}
	})
}

func TestMustCompilePanicsOnBadPattern(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an invalid pattern")
		}
	}()
	bounded.MustCompile(`^[a-`, 1, 2)
}
