package api

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxPathVar bounds a path parameter. Ids here are short (account ids,
// WhatsApp message ids, JIDs, SHA-256 media ids, job ids).
const maxPathVar = 256

// checkPathVars refuses path parameters no id can have before a handler
// hands them to a store or builds a file name from them: empty, too long,
// not UTF-8, control characters (NUL included), path separators or dot
// segments. Handlers then check the shape of their own ids.
func checkPathVars(vars map[string]string) error {
	for name, v := range vars {
		switch {
		case v == "":
			return Invalid(name, "must not be empty")
		case len(v) > maxPathVar:
			return Invalid(name, "must be at most %d bytes", maxPathVar)
		case !utf8.ValidString(v):
			return Invalid(name, "must be UTF-8 text")
		case v == "." || v == "..":
			return Invalid(name, "%q is not an id", v)
		case strings.ContainsAny(v, `/\`):
			return Invalid(name, "must not contain a slash")
		case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }):
			return Invalid(name, "must not contain control characters")
		}
	}
	return nil
}
