package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"

	"github.com/gorilla/mux"

	"github.com/wildcathub/wildcat/core/media"
)

// MediaStore keeps media files; media.Store (either engine) implements it.
type MediaStore interface {
	Put(ctx context.Context, r io.Reader, mimetype, filename string) (*media.Info, error)
	Open(ctx context.Context, id string) (*media.Reader, error)
	ReadAll(ctx context.Context, id string) ([]byte, *media.Info, error)
	MaxBytes() int64
}

// MediaRedirector is what a MediaStore also implements when some of its
// media is better fetched from elsewhere (the media archive's S3 bucket
// with pre-signed URLs): MediaRedirect answers the URL GET
// /v1/media/{mediaId} redirects to, "" to serve the bytes, or an error
// wrapping media.ErrNotFound.
type MediaRedirector interface {
	MediaRedirect(ctx context.Context, id string) (string, error)
}

// MediaFetcher downloads media a send names by URL; the media Fetcher
// implements it.
type MediaFetcher interface {
	Fetch(ctx context.Context, url string) (*media.Fetched, error)
}

type mediaRoutes struct {
	store MediaStore
}

type mediaJSON struct {
	MediaID  string `json:"mediaId"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Mimetype string `json:"mimetype"`
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url"`
}

func mediaPath(id string) string { return "/v1/media/" + id }

func renderMedia(in *media.Info) mediaJSON {
	return mediaJSON{MediaID: in.ID, SHA256: in.SHA256, Size: in.Size, Mimetype: in.Mimetype, Filename: in.Filename, URL: mediaPath(in.ID)}
}

// multipartSlack is what a multipart envelope may add to the file itself.
const multipartSlack = 64 << 10

// upload answers POST /v1/media: a multipart form with the file in field
// "file", or the bytes as the body with their own Content-Type. The same
// bytes uploaded twice are stored once and answered with the same mediaId.
func (h *mediaRoutes) upload(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return &Error{Status: http.StatusUnsupportedMediaType, Slug: "unsupported-media-type", Title: "Unsupported media type", Field: "Content-Type",
			Detail: "send the file as multipart/form-data (field \"file\") or as the body with its own Content-Type"}
	}
	var (
		body     io.Reader = r.Body
		mimetype           = ct
		filename           = ""
		field              = "body"
	)
	if mt == "multipart/form-data" {
		field = "file"
		mr, err := r.MultipartReader()
		if err != nil {
			return Invalid("body", "malformed multipart form: %v", err)
		}
		for {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return Invalid("file", "the form has no \"file\" field")
			}
			if err != nil {
				return bodyError("body", err)
			}
			if p.FormName() != "file" {
				continue
			}
			mimetype, filename, body = p.Header.Get("Content-Type"), path.Base(p.FileName()), p
			if filename == "." || filename == "/" {
				filename = ""
			}
			break
		}
	}
	if !media.Supported(mimetype) {
		f := "Content-Type"
		if field == "file" {
			f = "file"
		}
		return &Error{Status: http.StatusUnsupportedMediaType, Slug: "unsupported-media-type", Title: "Unsupported media type", Field: f,
			Detail: fmt.Sprintf("%s is not a media type WhatsApp takes (images, video, audio, documents; no HTML, SVG or scripts)", orUnknown(mimetype))}
	}
	in, err := h.store.Put(r.Context(), body, normaliseMimetype(mimetype), filename)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = &media.TooLargeError{Limit: h.store.MaxBytes()}
		}
		return mediaError(field, err)
	}
	w.Header().Set("Location", mediaPath(in.ID))
	return WriteJSON(w, http.StatusCreated, renderMedia(in))
}

// normaliseMimetype keeps parameters that matter (codecs=opus for voice
// notes) in a canonical spelling.
func normaliseMimetype(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mime.FormatMediaType(mt, params)
}

func bodyError(field string, err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return mediaError(field, &media.TooLargeError{Limit: tooBig.Limit - multipartSlack})
	}
	return Invalid(field, "cannot read the body: %v", err)
}

// download answers GET /v1/media/{mediaId}: the bytes with their type,
// length and ETag (the SHA-256, which never changes for an id), and single
// or multiple byte ranges, conditional requests and 416 through
// http.ServeContent over a reader that reads only what a range covers.
func (h *mediaRoutes) download(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["mediaId"]
	if !media.ValidID(id) {
		return Invalid("mediaId", "is not a media id (the SHA-256 of the bytes, 64 hex digits)")
	}
	if rr, ok := h.store.(MediaRedirector); ok {
		u, err := rr.MediaRedirect(r.Context(), id)
		if errors.Is(err, media.ErrNotFound) {
			return NotFound("media", id)
		}
		if err != nil {
			return err
		}
		if u != "" {
			// The URL expires: no cache may keep the redirect.
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, u, http.StatusTemporaryRedirect)
			return nil
		}
	}
	rd, err := h.store.Open(r.Context(), id)
	if errors.Is(err, media.ErrNotFound) {
		return NotFound("media", id)
	}
	if err != nil {
		return err
	}
	defer rd.Close()
	hd := w.Header()
	ct, inline := servedType(rd.Info.Mimetype)
	hd.Set("Content-Type", ct)
	hd.Set("ETag", `"`+rd.Info.SHA256+`"`)
	hd.Set("Cache-Control", "private, max-age=31536000, immutable")
	// Stored media is user content served from the API's origin: never
	// sniffed into something executable, never a document with scripts.
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	// Only images, audio and video known not to run scripts are shown
	// inline; the rest downloads, under a name with no path in it.
	if cd := contentDisposition(rd.Info.Filename, inline); cd != "inline" {
		hd.Set("Content-Disposition", cd)
	}
	http.ServeContent(w, r, "", rd.Info.Uploaded, rd)
	return nil
}

// mediaBodyLimit is the largest body POST /v1/media and a send with inline
// base64 media may carry.
func mediaBodyLimit(maxMedia, maxBody int64) (upload, send int64) {
	return maxMedia + multipartSlack, max(maxBody, maxMedia/3*4+4+multipartSlack)
}
