// Package s3media keeps archived media in an S3-compatible bucket (AWS S3,
// MinIO, Ceph, R2, ...) under content-addressed keys: {prefix}{sha256}, so
// the same bytes are one object however many messages carry them.
//
// The media archive plugin (plugins/mediaarchive) writes and sweeps the
// bucket; the daemon reads it to serve GET /v1/media/{id} (streamed, or a
// redirect to a pre-signed URL). Both read the same config block, the
// plugin's `s3:` (ParseConfig), so they always agree on where an object
// lives.
package s3media

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Server-side encryption modes (the x-amz-server-side-encryption values).
const (
	SSES3  = "AES256"
	SSEKMS = "aws:kms"
)

// MaxPresignTTL is the longest a SigV4 pre-signed URL may live.
const MaxPresignTTL = 7 * 24 * time.Hour

// Config is the s3 block of the media archive's config.
type Config struct {
	Bucket string
	// Prefix goes before every key; empty or ending in "/".
	Prefix string
	Region string
	// Endpoint is the server's base URL; empty is AWS S3.
	Endpoint string
	// PathStyle: nil picks per endpoint (virtual-hosted for AWS, path style
	// for others), true forces /{bucket}/{key}, false {bucket}.host/{key}.
	PathStyle *bool
	// Static credentials; empty uses the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), ~/.aws/credentials, then
	// the instance's IAM role.
	AccessKeyID, SecretAccessKey, SessionToken string
	// SSE is "", SSES3 or SSEKMS; SSEKMSKeyID the KMS key (empty: the
	// bucket's default key).
	SSE, SSEKMSKeyID string
	// PresignTTL > 0 makes GET /v1/media/{id} redirect to a pre-signed URL
	// valid that long instead of streaming the bytes through the daemon.
	PresignTTL time.Duration
}

// ConfigError names the key (relative to the plugin's config block, e.g.
// "s3.bucket") that is wrong.
type ConfigError struct{ Key, Problem string }

func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Keys are the keys of the s3 block.
var Keys = []string{"bucket", "prefix", "region", "endpoint", "path_style", "access_key_id", "secret_access_key",
	"session_token", "sse", "sse_kms_key_id", "presign_ttl"}

// FromArchiveConfig is the s3 block of the media archive's whole config
// block when its targets include s3; nil (and no error) when they do not.
func FromArchiveConfig(block map[string]any) (*Config, error) {
	if !hasS3Target(block["targets"]) {
		return nil, nil
	}
	return ParseConfig(block["s3"])
}

func hasS3Target(v any) bool {
	switch x := v.(type) {
	case string:
		return x == "s3"
	case []any:
		for _, e := range x {
			if e == "s3" {
				return true
			}
		}
	case []string:
		for _, e := range x {
			if e == "s3" {
				return true
			}
		}
	}
	return false
}

// ParseConfig reads the s3 block (a map from YAML or from the plugin's
// JSON-like config). Unknown keys are refused: a typo must not silently
// fall back to a default such as no encryption.
func ParseConfig(raw any) (*Config, error) {
	if raw == nil {
		return nil, &ConfigError{"s3.bucket", "is required when targets include s3"}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, &ConfigError{"s3", fmt.Sprintf("must be a map of settings (bucket, prefix, ...), not %T", raw)}
	}
	c := &Config{}
	for k, v := range m {
		if err := c.set(k, v); err != nil {
			return nil, &ConfigError{"s3." + k, err.Error()}
		}
	}
	return c, c.check()
}

func (c *Config) set(k string, v any) error {
	var err error
	str := func(dst *string) {
		s, ok := v.(string)
		if !ok {
			err = fmt.Errorf("must be a string, not %T", v)
		}
		*dst = strings.TrimSpace(s)
	}
	switch k {
	case "bucket":
		if str(&c.Bucket); err == nil {
			if e := s3utils.CheckValidBucketNameStrict(c.Bucket); e != nil {
				err = fmt.Errorf("%q is not a bucket name: %v", c.Bucket, e)
			}
		}
	case "prefix":
		if str(&c.Prefix); err == nil {
			c.Prefix = strings.TrimLeft(c.Prefix, "/")
			if c.Prefix != "" && !strings.HasSuffix(c.Prefix, "/") {
				c.Prefix += "/"
			}
			if strings.Contains(c.Prefix, "//") || strings.Contains("/"+c.Prefix, "/../") || strings.Contains("/"+c.Prefix, "/./") {
				err = fmt.Errorf("%q has an empty, . or .. segment", c.Prefix)
			}
		}
	case "region":
		str(&c.Region)
	case "endpoint":
		if str(&c.Endpoint); err == nil && c.Endpoint != "" {
			u, e := url.Parse(c.Endpoint)
			switch {
			case e != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
				err = fmt.Errorf("%q is not a URL like https://minio.example:9000", c.Endpoint)
			case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil:
				err = fmt.Errorf("%q: give the server's base URL only (no path, query or credentials; the bucket is s3.bucket)", c.Endpoint)
			}
		}
	case "path_style":
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("must be true or false, not %T", v)
		}
		c.PathStyle = &b
	case "access_key_id":
		str(&c.AccessKeyID)
	case "secret_access_key":
		str(&c.SecretAccessKey)
	case "session_token":
		str(&c.SessionToken)
	case "sse":
		if str(&c.SSE); err == nil && c.SSE != "" && c.SSE != SSES3 && c.SSE != SSEKMS {
			err = fmt.Errorf("%q is not AES256 or aws:kms", c.SSE)
		}
	case "sse_kms_key_id":
		str(&c.SSEKMSKeyID)
	case "presign_ttl":
		c.PresignTTL, err = duration(v)
		if err == nil && (c.PresignTTL < time.Second || c.PresignTTL > MaxPresignTTL) {
			err = fmt.Errorf("must be between 1s and 168h (S3 refuses longer), not %v", c.PresignTTL)
		}
	default:
		return fmt.Errorf("unknown key (known: %s)", strings.Join(Keys, ", "))
	}
	return err
}

func (c *Config) check() error {
	switch {
	case c.Bucket == "":
		return &ConfigError{"s3.bucket", "is required when targets include s3"}
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		if c.AccessKeyID == "" {
			return &ConfigError{"s3.access_key_id", "is required with s3.secret_access_key"}
		}
		return &ConfigError{"s3.secret_access_key", "is required with s3.access_key_id"}
	case c.SessionToken != "" && c.AccessKeyID == "":
		return &ConfigError{"s3.session_token", "needs s3.access_key_id and s3.secret_access_key"}
	case c.SSEKMSKeyID != "" && c.SSE != SSEKMS:
		return &ConfigError{"s3.sse_kms_key_id", "needs sse: aws:kms"}
	}
	return nil
}

// duration reads "15m", "1h30m" or a number of seconds.
func duration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, errors.New("must be a duration like 15m or 1h")
		}
		return d, nil
	case float64:
		if x != math.Trunc(x) {
			return 0, errors.New("must be a whole number of seconds or a duration like 15m")
		}
		return time.Duration(x) * time.Second, nil
	case int:
		return time.Duration(x) * time.Second, nil
	case int64:
		return time.Duration(x) * time.Second, nil
	}
	return 0, fmt.Errorf("must be a duration like 15m, not %T", v)
}
