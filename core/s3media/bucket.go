package s3media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"

	"github.com/wildcathub/wildcat/core/bounded"
)

// ErrNotFound: no object for that SHA-256 (or not a SHA-256 at all).
var ErrNotFound = errors.New("not in the s3 bucket")

// User metadata (x-amz-meta-*) of an archived object.
const (
	// metaReferenced is when a message last referenced the bytes (Unix
	// seconds): the retention clock, as a dir target file's mtime is. It is
	// the archive's clock, not the server's, so a sweep compares like with
	// like.
	metaReferenced = "Wildcat-Referenced"
	// metaFilename is the sender's file name, URL-escaped (metadata is
	// ASCII).
	metaFilename = "Wildcat-Filename"
)

var sumShape = bounded.MustCompile(`^[0-9a-f]+$`, 64, 64)

// Bucket is the archive's bucket. Safe for concurrent use.
type Bucket struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
	sse    encrypt.ServerSide
}

// Object describes an archived object.
type Object struct {
	SHA256      string
	Size        int64
	ContentType string
	Filename    string
	// Modified is the server's last-modified time; Referenced the
	// archive's retention clock (Modified when the object has none).
	Modified, Referenced time.Time
}

// Option adjusts Open.
type Option func(*minio.Options)

// WithTransport sends the bucket's requests through rt (default:
// http.DefaultTransport).
func WithTransport(rt http.RoundTripper) Option {
	return func(o *minio.Options) { o.Transport = rt }
}

// Open connects to the bucket described by cfg (no request is made: a
// server that is down shows in the first call).
func Open(cfg *Config, opts ...Option) (*Bucket, error) {
	endpoint, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			return nil, &ConfigError{"s3.endpoint", err.Error()}
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	creds := credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	if cfg.AccessKeyID == "" {
		// The AWS SDKs' default chain (less SSO and web identity).
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.EnvMinio{}, &credentials.FileAWSCredentials{}, &credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle != nil {
		lookup = minio.BucketLookupDNS
		if *cfg.PathStyle {
			lookup = minio.BucketLookupPath
		}
	}
	mo := &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup,
		Transport: http.DefaultTransport, MaxRetries: 3}
	for _, o := range opts {
		o(mo)
	}
	c, err := minio.New(endpoint, mo)
	if err != nil {
		return nil, &ConfigError{"s3.endpoint", err.Error()}
	}
	b := &Bucket{cfg: *cfg, client: c, core: minio.Core{Client: c}}
	switch cfg.SSE {
	case SSES3:
		b.sse = encrypt.NewSSE()
	case SSEKMS:
		if b.sse, err = encrypt.NewSSEKMS(cfg.SSEKMSKeyID, nil); err != nil {
			return nil, &ConfigError{"s3.sse_kms_key_id", err.Error()}
		}
	}
	return b, nil
}

// Config is the bucket's configuration.
func (b *Bucket) Config() Config { return b.cfg }

// Key is the object key of the bytes with SHA-256 sum.
func (b *Bucket) Key(sum string) string { return b.cfg.Prefix + sum }

func (b *Bucket) notFound(sum string) error {
	return fmt.Errorf("s3://%s/%s: %w", b.cfg.Bucket, b.Key(sum), ErrNotFound)
}

func (b *Bucket) wrap(op, sum string, err error) error {
	if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusNotFound || r.Code == minio.NoSuchKey {
		return b.notFound(sum)
	}
	return fmt.Errorf("s3 %s s3://%s/%s: %w", op, b.cfg.Bucket, b.Key(sum), err)
}

// Stat describes the object of sum (a HEAD request).
func (b *Bucket) Stat(ctx context.Context, sum string) (*Object, error) {
	if !sumShape.MatchString(sum) {
		return nil, b.notFound(sum)
	}
	// HEAD of an SSE-S3 or SSE-KMS object needs no key headers.
	oi, err := b.client.StatObject(ctx, b.cfg.Bucket, b.Key(sum), minio.StatObjectOptions{})
	if err != nil {
		return nil, b.wrap("head", sum, err)
	}
	return objectOf(sum, oi), nil
}

func objectOf(sum string, oi minio.ObjectInfo) *Object {
	o := &Object{SHA256: sum, Size: oi.Size, ContentType: oi.ContentType, Modified: oi.LastModified, Referenced: oi.LastModified}
	for k, v := range oi.UserMetadata {
		switch {
		case strings.EqualFold(k, metaReferenced):
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				o.Referenced = time.Unix(n, 0)
			}
		case strings.EqualFold(k, metaFilename):
			o.Filename, _ = url.QueryUnescape(v)
		}
	}
	return o
}

func meta(filename string, referenced time.Time) map[string]string {
	m := map[string]string{metaReferenced: strconv.FormatInt(referenced.Unix(), 10)}
	if filename != "" {
		m[metaFilename] = url.QueryEscape(filename)
	}
	return m
}

// Put uploads size bytes of r as the object of sum, encrypted as
// configured, with referenced as its retention clock. Callers check with
// Stat first: content-addressed bytes are uploaded once.
func (b *Bucket) Put(ctx context.Context, sum string, r io.Reader, size int64, contentType, filename string, referenced time.Time) error {
	if !sumShape.MatchString(sum) {
		return fmt.Errorf("s3 put: %q is not a SHA-256", sum)
	}
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.Key(sum), r, size, minio.PutObjectOptions{
		ContentType: contentType, UserMetadata: meta(filename, referenced), ServerSideEncryption: b.sse,
	})
	if err != nil {
		return b.wrap("put", sum, err)
	}
	return nil
}

// Touch sets the object's retention clock to at: a server-side copy onto
// itself with its metadata replaced (S3 has no other way to change it), so
// no bytes travel.
func (b *Bucket) Touch(ctx context.Context, o *Object, at time.Time) error {
	_, err := b.client.CopyObject(ctx, minio.CopyDestOptions{
		Bucket: b.cfg.Bucket, Object: b.Key(o.SHA256), Encryption: b.sse,
		ContentType: o.ContentType, UserMetadata: meta(o.Filename, at), ReplaceMetadata: true,
	}, minio.CopySrcOptions{Bucket: b.cfg.Bucket, Object: b.Key(o.SHA256)})
	if err != nil {
		return b.wrap("copy", o.SHA256, err)
	}
	return nil
}

// Delete removes the object of sum; an absent one is not an error.
func (b *Bucket) Delete(ctx context.Context, sum string) error {
	if err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.Key(sum), minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(b.wrap("delete", sum, err), ErrNotFound) {
			return nil
		}
		return b.wrap("delete", sum, err)
	}
	return nil
}

// Open describes the object of sum and returns a reader over it that seeks
// anywhere: each read after a seek is one ranged GET from there, so an
// HTTP range request transfers only what it covers.
func (b *Bucket) Open(ctx context.Context, sum string) (*Object, io.ReadSeekCloser, error) {
	o, err := b.Stat(ctx, sum)
	if err != nil {
		return nil, nil, err
	}
	return o, &rangeReader{ctx: ctx, b: b, sum: sum, size: o.Size}, nil
}

// PresignGet is a URL that GETs the object of sum without credentials for
// the configured presign_ttl, after checking the object exists (so a
// missing id is ErrNotFound, not a redirect to an S3 error).
func (b *Bucket) PresignGet(ctx context.Context, sum string) (string, error) {
	if _, err := b.Stat(ctx, sum); err != nil {
		return "", err
	}
	u, err := b.client.PresignedGetObject(ctx, b.cfg.Bucket, b.Key(sum), b.cfg.PresignTTL, nil)
	if err != nil {
		return "", b.wrap("presign", sum, err)
	}
	return u.String(), nil
}

// Sweep deletes the archived objects whose retention clock is before
// cutoff and reports how many it deleted. Objects under the prefix that
// are not named by a SHA-256 are not the archive's and stay.
func (b *Bucket) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	for oi := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.cfg.Prefix, Recursive: true}) {
		if oi.Err != nil {
			return n, fmt.Errorf("s3 list s3://%s/%s: %w", b.cfg.Bucket, b.cfg.Prefix, oi.Err)
		}
		sum := strings.TrimPrefix(oi.Key, b.cfg.Prefix)
		if !sumShape.MatchString(sum) {
			continue
		}
		// Listings carry no user metadata: read the retention clock with
		// a HEAD.
		o, err := b.Stat(ctx, sum)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if !o.Referenced.Before(cutoff) {
			continue
		}
		if err := b.Delete(ctx, sum); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// rangeReader reads an object from an offset with one GET per seek.
type rangeReader struct {
	ctx       context.Context
	b         *Bucket
	sum       string
	size, off int64
	body      io.ReadCloser
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.body == nil {
		var opts minio.GetObjectOptions
		if r.off > 0 {
			if err := opts.SetRange(r.off, 0); err != nil {
				return 0, err
			}
		}
		body, _, _, err := r.b.core.GetObject(r.ctx, r.b.cfg.Bucket, r.b.Key(r.sum), opts)
		if err != nil {
			return 0, r.b.wrap("get", r.sum, err)
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && r.off < r.size {
		err = fmt.Errorf("s3 get s3://%s/%s: %w after %d of %d bytes", r.b.cfg.Bucket, r.b.Key(r.sum), io.ErrUnexpectedEOF, r.off, r.size)
	}
	return n, err
}

func (r *rangeReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	if offset != r.off {
		r.Close()
		r.off = offset
	}
	return offset, nil
}

func (r *rangeReader) Close() error {
	if r.body == nil {
		return nil
	}
	err := r.body.Close()
	r.body = nil
	return err
}
