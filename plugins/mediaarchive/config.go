package main

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wildcathub/wildcat/core/s3media"
)

// Target names.
const (
	TargetGridFS = "gridfs"
	TargetDir    = "dir"
	TargetS3     = "s3"
)

// DefaultMaxBytes is max_bytes when the config gives none: 64 MiB, the
// daemon's default media.max_bytes.
const DefaultMaxBytes = 64 << 20

// Config is the plugin's config block (plugins.mediaarchive.config).
type Config struct {
	// Targets are where archived bytes go: gridfs (the daemon's media
	// bucket, the default), dir and/or s3.
	Targets []string
	// Dir is the root of the dir target's tree:
	// {dir}/{account}/{yyyy}/{mm}/{sha256}.{ext}.
	Dir string
	// S3 is the s3 target's bucket (s3media.ParseConfig), shared with the
	// daemon, which serves GET /v1/media/{id} from it.
	S3 *s3media.Config
	// MaxBytes: larger media is skipped and recorded with a reason.
	MaxBytes int64
	// Mimetypes is the allow-list ("image/jpeg", "image/*", "*/*"); empty
	// allows every type. Other media is skipped with a reason.
	Mimetypes []string
	// RetentionDays > 0 deletes archived media whose newest referencing
	// message is older than that many days (0 keeps it forever).
	RetentionDays int
}

func (c *Config) has(target string) bool { return slices.Contains(c.Targets, target) }

// parseConfig reads the config block: JSON-like values (map[string]any,
// []any, string, float64, bool). Unknown keys are refused, so a typo does
// not silently fall back to a default.
func parseConfig(raw map[string]any) (*Config, error) {
	c := &Config{Targets: []string{TargetGridFS}, MaxBytes: DefaultMaxBytes}
	for k, v := range raw {
		var err error
		switch k {
		case "targets":
			var ts []string
			if ts, err = stringList(v); err == nil {
				if len(ts) == 0 {
					err = errors.New("must name at least one of gridfs, dir, s3")
				}
				for _, t := range ts {
					if t != TargetGridFS && t != TargetDir && t != TargetS3 {
						err = fmt.Errorf("unknown target %q (gridfs, dir or s3)", t)
					}
				}
				c.Targets = dedupe(ts)
			}
		case "dir":
			s, ok := v.(string)
			if !ok {
				err = errors.New("must be a string (a directory path)")
			}
			c.Dir = s
		case "max_bytes":
			var n float64
			if n, err = number(v); err == nil {
				if n <= 0 || n != math.Trunc(n) {
					err = errors.New("must be a positive whole number of bytes")
				}
				c.MaxBytes = int64(n)
			}
		case "mimetypes":
			var ms []string
			if ms, err = stringList(v); err == nil {
				for i, m := range ms {
					m = strings.ToLower(strings.TrimSpace(m))
					typ, sub, ok := strings.Cut(m, "/")
					if !ok || typ == "" || sub == "" || (typ == "*" && sub != "*") {
						err = fmt.Errorf("%q is not a mimetype or pattern (e.g. image/jpeg, image/*, */*)", ms[i])
						break
					}
					ms[i] = m
				}
				c.Mimetypes = ms
			}
		case "retention_days":
			var n float64
			if n, err = number(v); err == nil {
				if n < 0 || n != math.Trunc(n) || n > 100_000 {
					err = errors.New("must be a whole number of days, 0 (keep forever) or more")
				}
				c.RetentionDays = int(n)
			}
		case "s3":
			// Read below, once targets are known.
		default:
			err = errors.New("unknown key (known: targets, dir, s3, max_bytes, mimetypes, retention_days)")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if c.has(TargetDir) {
		if strings.TrimSpace(c.Dir) == "" {
			return nil, errors.New("dir: must be set when targets include dir")
		}
		c.Dir = filepath.Clean(c.Dir)
	}
	if c.has(TargetS3) {
		s3, err := s3media.ParseConfig(raw["s3"])
		if err != nil {
			return nil, err
		}
		c.S3 = s3
	} else if raw["s3"] != nil {
		return nil, errors.New("s3: is set but targets do not include s3")
	}
	return c, nil
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("must be a list of strings, has %v", e)
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return append([]string(nil), x...), nil
	}
	return nil, fmt.Errorf("must be a list of strings, not %T", v)
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("must be a number, not %T", v)
}

func dedupe(s []string) []string {
	var out []string
	for _, e := range s {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// allowed reports whether mimetype passes the allow-list.
func (c *Config) allowed(mimetype string) bool {
	if len(c.Mimetypes) == 0 {
		return true
	}
	mt, _, err := mime.ParseMediaType(mimetype)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(mimetype))
	}
	typ, _, _ := strings.Cut(mt, "/")
	for _, p := range c.Mimetypes {
		if p == "*/*" || p == mt || (strings.HasSuffix(p, "/*") && strings.TrimSuffix(p, "/*") == typ) {
			return true
		}
	}
	return false
}

// extensions WhatsApp media usually has; others come from the mime package.
var extensions = map[string]string{
	"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
	"video/mp4": "mp4", "video/3gpp": "3gp", "audio/ogg": "ogg", "audio/mpeg": "mp3",
	"audio/mp4": "m4a", "audio/aac": "aac", "audio/amr": "amr", "application/pdf": "pdf",
	"text/plain": "txt", "application/zip": "zip",
}

// extension is the file extension (without dot) for mimetype; "bin" when
// unknown.
func extension(mimetype string) string {
	mt, _, err := mime.ParseMediaType(mimetype)
	if err != nil {
		return "bin"
	}
	if e, ok := extensions[mt]; ok {
		return e
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
		return strings.TrimPrefix(exts[0], ".")
	}
	return "bin"
}
