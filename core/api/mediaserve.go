package api

import (
	"mime"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// inlineSafe are the media types a browser may show from the API's origin:
// images, audio and video that cannot run scripts. Everything else —
// text/html, image/svg+xml, application/xhtml+xml, JavaScript, PDF,
// unknown types — is served as an attachment: archived inbound media is
// whatever a contact sent.
var inlineSafe = map[string]bool{
	"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true, "image/avif": true, "image/bmp": true,
	"audio/ogg": true, "audio/mpeg": true, "audio/mp4": true, "audio/aac": true, "audio/amr": true, "audio/wav": true, "audio/webm": true, "audio/opus": true,
	"video/mp4": true, "video/3gpp": true, "video/webm": true, "video/quicktime": true,
}

// servedType is the Content-Type a stored media file is answered with and
// whether it may be shown inline.
func servedType(stored string) (contentType string, inline bool) {
	mt, _, err := mime.ParseMediaType(stored)
	if err != nil || mt == "" {
		return "application/octet-stream", false
	}
	return stored, inlineSafe[mt]
}

// contentDisposition is the Content-Disposition of a media download (RFC
// 6266): inline only for a safe type, an ASCII filename for old clients and
// filename* with the UTF-8 name; the name is the sender's, so it is cut to
// its last path segment and stripped of control characters.
func contentDisposition(filename string, inline bool) string {
	disp := "attachment"
	if inline {
		disp = "inline"
	}
	name := sanitizeFilename(filename)
	if name == "" {
		if inline {
			return disp
		}
		name = "media"
	}
	var ascii strings.Builder
	for _, r := range name {
		switch {
		case r == '"' || r == '\\':
			ascii.WriteByte('_')
		case r < utf8.RuneSelf:
			ascii.WriteRune(r)
		default:
			ascii.WriteByte('_')
		}
	}
	v := disp + `; filename="` + ascii.String() + `"`
	if ascii.String() != name {
		v += "; filename*=UTF-8''" + strings.ReplaceAll(url.PathEscape(name), "'", "%27")
	}
	return v
}

// sanitizeFilename keeps a file name safe to offer for saving: no
// directories (either slash), no control or format characters, no leading
// dots (hidden files, ".."), at most 200 bytes.
func sanitizeFilename(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == ';' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimLeft(strings.TrimSpace(s), ".")
	for len(s) > 200 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return strings.TrimSpace(s)
}
