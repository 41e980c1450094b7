package media

import (
	"mime"
	"slices"
	"strings"
)

// Kinds of media a message can carry, as the send API names them.
var Kinds = []string{"image", "video", "gif", "audio", "voice", "document", "sticker"}

// allowed lists the mimetypes WhatsApp renders for each kind. Documents
// take common office, archive and text formats and any of the others, but
// never active content (HTML, SVG, scripts): the daemon serves stored media
// back from its own origin, and those would run there.
var allowed = map[string][]string{
	"image":   {"image/jpeg", "image/png", "image/webp"},
	"sticker": {"image/webp"},
	"video":   {"video/mp4", "video/3gpp"},
	"gif":     {"video/mp4"},
	"audio":   {"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"},
	"voice":   {"audio/ogg"},
	"document": {
		"application/pdf", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation",
		"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
		"application/vnd.oasis.opendocument.presentation", "application/rtf", "application/epub+zip",
		"application/zip", "application/gzip", "application/x-7z-compressed", "application/x-tar",
		"application/vnd.rar", "application/json", "application/octet-stream",
		"text/plain", "text/csv", "text/calendar", "text/vcard",
		"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/tiff",
		"video/mp4", "video/3gpp", "video/quicktime", "video/webm",
		"audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg", "audio/wav",
	},
}

// BaseType is a mimetype without parameters, lower case ("audio/ogg" for
// "audio/ogg; codecs=opus"); "" when it does not parse.
func BaseType(mimetype string) string {
	mt, _, err := mime.ParseMediaType(mimetype)
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// Allowed reports whether media of the given kind may have this mimetype.
func Allowed(kind, mimetype string) bool {
	return slices.Contains(allowed[kind], BaseType(mimetype))
}

// Supported reports whether any kind accepts the mimetype: what an upload
// must be.
func Supported(mimetype string) bool { return Allowed("document", mimetype) }

// AllowedTypes lists the mimetypes of a kind, for error messages.
func AllowedTypes(kind string) []string { return allowed[kind] }

// InferKind picks the kind a mimetype is sent as when the caller names none.
func InferKind(mimetype string) string {
	mt := BaseType(mimetype)
	for _, k := range []string{"image", "video", "audio"} {
		if slices.Contains(allowed[k], mt) {
			return k
		}
	}
	return "document"
}
