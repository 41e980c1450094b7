package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// HandlerFunc is a handler that returns its error instead of writing it, so
// every failure is answered in one place and in one format.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// WriteJSON answers v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON request body into dst strictly: the content type
// must be JSON, unknown fields and trailing data are refused, and each
// failure names the field at fault. The body size limit is applied by the
// server's middleware; exceeding it yields 413.
func DecodeJSON(r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); !isJSONType(ct) {
		return unsupportedType(ct)
	}
	dec := json.NewDecoder(&depthReader{r: r.Body, max: MaxJSONDepth})
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, errTooDeep) {
			return jsonError(err)
		}
		return Invalid("body", "unexpected data after the JSON value")
	}
	return nil
}

// MaxJSONDepth is how deeply objects and arrays may nest in a request
// body. No route needs more than a few levels (rule config blocks a few
// more); a body nested thousands deep costs the decoder stack and time
// for nothing.
const MaxJSONDepth = 32

// errTooDeep is depthReader's refusal.
var errTooDeep = errors.New("JSON nested too deeply")

// depthReader refuses a JSON text nested deeper than max while it is
// read, before the decoder builds anything from it.
type depthReader struct {
	r        io.Reader
	max      int
	depth    int
	inString bool
	escaped  bool
}

func (d *depthReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	for _, c := range p[:n] {
		switch {
		case d.escaped:
			d.escaped = false
		case d.inString:
			switch c {
			case '\\':
				d.escaped = true
			case '"':
				d.inString = false
			}
		case c == '"':
			d.inString = true
		case c == '{' || c == '[':
			d.depth++
			if d.depth > d.max {
				return 0, errTooDeep
			}
		case c == '}' || c == ']':
			d.depth--
		}
	}
	return n, err
}

func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.Is(err, errTooDeep):
		return Invalid("body", "objects and arrays nest more than %d levels deep", MaxJSONDepth)
	case errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Status: http.StatusRequestTimeout, Slug: "request-timeout", Title: "Request timeout", Field: "body",
			Detail: "the body was not received within the read timeout (http.read_timeout)", Err: err}
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Slug: "body-too-large", Title: "Request body too large",
			Field: "body", Detail: fmt.Sprintf("the body exceeds %d bytes", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return Invalid("body", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("body", "the JSON body ends too early")
	case errors.As(err, &syntax):
		return Invalid("body", "malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return Invalid(field, "expected %s, got JSON %s", jsonTypeName(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(name, "unknown field %q", name)
	}
	return Invalid("body", "cannot decode JSON: %s", err.Error())
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
		return "a number"
	}
	return kind
}
