// Package bounded holds regular expressions whose length bound is checked
// apart from the pattern. A counted repetition such as [a-z0-9_-]{0,62}
// compiles to one instruction per count, and a package-level pattern keeps
// that program (and its one-pass copy) on the heap for the life of the
// process: 10–76 KB each, about 440 KB for the identifier shapes the daemon
// checks. The same language written as [a-z0-9_-]* plus a rune count is a
// few hundred bytes, and rejects an over-long input before running the
// program at all.
package bounded

import (
	"regexp"
	"unicode/utf8"
)

// Regexp matches strings of Min to Max runes that match its pattern.
type Regexp struct {
	re       *regexp.Regexp
	min, max int
}

// MustCompile compiles expr, a pattern anchored at both ends, for strings
// of min to max runes (as the pattern's counted repetitions would count
// them: an invalid UTF-8 byte is one rune). It panics when expr does not
// compile, like regexp.MustCompile.
func MustCompile(expr string, min, max int) *Regexp {
	return &Regexp{re: regexp.MustCompile(expr), min: min, max: max}
}

// MatchString reports whether s has Min to Max runes and matches the
// pattern.
func (r *Regexp) MatchString(s string) bool {
	// A rune is at least one byte: a string longer than 4×max bytes, or
	// shorter than min bytes, cannot be in range; count only in between.
	if len(s) < r.min || len(s) > utf8.UTFMax*r.max {
		return false
	}
	if n := utf8.RuneCountInString(s); n < r.min || n > r.max {
		return false
	}
	return r.re.MatchString(s)
}
