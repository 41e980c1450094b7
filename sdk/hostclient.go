package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/wildcathub/wildcat/sdk/proto/wildcat/plugin/v1"
)

// chunkSize is the size of the byte chunks of media and blob streams.
const chunkSize = 64 << 10

// hostClient is the plugin side of the Host service: the Host a plugin's
// calls get from HostFrom.
type hostClient struct {
	c pb.HostClient
}

var _ Host = (*hostClient)(nil)

func (h *hostClient) SendMessage(ctx context.Context, accountID string, req *SendRequest) (string, error) {
	if req == nil {
		return "", errors.New("SendMessage: nil request")
	}
	resp, err := h.c.SendMessage(ctx, &pb.SendMessageRequest{AccountId: accountID, Request: SendRequestToProto(req)})
	if err != nil {
		return "", fromStatus(ctx, "SendMessage", err)
	}
	return resp.GetMessageId(), nil
}

func (h *hostClient) FetchMedia(ctx context.Context, accountID, messageID string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := h.c.FetchMedia(ctx, &pb.FetchMediaRequest{AccountId: accountID, MessageId: messageID})
	if err != nil {
		err = fromStatus(ctx, "FetchMedia", err)
		cancel()
		return nil, err
	}
	r := &streamReader{ctx: ctx, op: "FetchMedia", cancel: cancel, recv: func() ([]byte, error) {
		c, err := stream.Recv()
		return c.GetData(), err
	}}
	// Read the first chunk now, so "not found" is FetchMedia's error rather
	// than the first Read's.
	if err := r.fill(); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	return r, nil
}

func (h *hostClient) PutBlob(ctx context.Context, info BlobInfo, r io.Reader) (BlobInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := h.c.PutBlob(ctx)
	if err != nil {
		return BlobInfo{}, fromStatus(ctx, "PutBlob", err)
	}
	first := &pb.PutBlobRequest{Part: &pb.PutBlobRequest_Info{Info: &pb.BlobInfo{Filename: info.Filename, ContentType: info.ContentType}}}
	if err := stream.Send(first); err != nil {
		_, err = stream.CloseAndRecv()
		return BlobInfo{}, fromStatus(ctx, "PutBlob", err)
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := stream.Send(&pb.PutBlobRequest{Part: &pb.PutBlobRequest_Data{Data: buf[:n]}}); err != nil {
				// The server ended the stream; CloseAndRecv has its reason.
				_, err = stream.CloseAndRecv()
				return BlobInfo{}, fromStatus(ctx, "PutBlob", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return BlobInfo{}, fmt.Errorf("PutBlob: read: %w", rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return BlobInfo{}, fromStatus(ctx, "PutBlob", err)
	}
	return blobInfoFromProto(resp), nil
}

func (h *hostClient) GetBlob(ctx context.Context, id string) (io.ReadCloser, BlobInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := h.c.GetBlob(ctx, &pb.GetBlobRequest{Id: id})
	if err != nil {
		err = fromStatus(ctx, "GetBlob", err)
		cancel()
		return nil, BlobInfo{}, err
	}
	first, err := stream.Recv()
	if err != nil {
		err = fromStatus(ctx, "GetBlob", err)
		cancel()
		return nil, BlobInfo{}, err
	}
	info := first.GetInfo()
	if info == nil {
		cancel()
		return nil, BlobInfo{}, errors.New("GetBlob: the host sent data before the blob's info")
	}
	r := &streamReader{ctx: ctx, op: "GetBlob", cancel: cancel, recv: func() ([]byte, error) {
		m, err := stream.Recv()
		return m.GetData(), err
	}}
	return r, blobInfoFromProto(info), nil
}

func (h *hostClient) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	resp, err := h.c.KVGet(ctx, &pb.KVGetRequest{Key: key})
	if err != nil {
		return nil, false, fromStatus(ctx, "KVGet", err)
	}
	return resp.GetValue(), resp.GetFound(), nil
}

func (h *hostClient) KVSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	req := &pb.KVSetRequest{Key: key, Value: value}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	_, err := h.c.KVSet(ctx, req)
	return fromStatus(ctx, "KVSet", err)
}

func (h *hostClient) KVDelete(ctx context.Context, key string) error {
	_, err := h.c.KVDelete(ctx, &pb.KVDeleteRequest{Key: key})
	return fromStatus(ctx, "KVDelete", err)
}

func (h *hostClient) GetMessage(ctx context.Context, accountID, messageID string) (*Message, error) {
	resp, err := h.c.GetMessage(ctx, &pb.GetMessageRequest{AccountId: accountID, MessageId: messageID})
	if err != nil {
		return nil, fromStatus(ctx, "GetMessage", err)
	}
	if resp.GetMessage() == nil {
		return nil, &remoteError{msg: "GetMessage: " + messageID + ": not found", sentinel: ErrNotFound}
	}
	return pb.MessageToCore(resp.GetMessage()), nil
}

func (h *hostClient) LinkMedia(ctx context.Context, l MediaLink) error {
	_, err := h.c.LinkMedia(ctx, &pb.LinkMediaRequest{
		AccountId: l.AccountID, MessageId: l.MessageID, MediaId: l.MediaID,
		Sha256: l.SHA256, Size: l.Size, Targets: l.Targets, SkippedReason: l.SkippedReason,
	})
	return fromStatus(ctx, "LinkMedia", err)
}

func blobInfoFromProto(p *pb.BlobInfo) BlobInfo {
	return BlobInfo{ID: p.GetId(), Filename: p.GetFilename(), ContentType: p.GetContentType(), Size: p.GetSize()}
}

func blobInfoToProto(b BlobInfo) *pb.BlobInfo {
	return &pb.BlobInfo{Id: b.ID, Filename: b.Filename, ContentType: b.ContentType, Size: b.Size}
}

// streamReader turns a stream of byte chunks into an io.ReadCloser.
type streamReader struct {
	ctx    context.Context
	op     string
	recv   func() ([]byte, error)
	cancel context.CancelFunc
	buf    []byte
	err    error
}

// fill receives chunks until one has bytes or the stream ends.
func (r *streamReader) fill() error {
	for len(r.buf) == 0 && r.err == nil {
		data, err := r.recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = fromStatus(r.ctx, r.op, err)
		default:
			r.buf = data
		}
	}
	if len(r.buf) > 0 {
		return nil
	}
	return r.err
}

func (r *streamReader) Read(p []byte) (int, error) {
	if err := r.fill(); err != nil {
		return 0, err
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Close ends the stream; the rest of it is not transferred.
func (r *streamReader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = errors.New(r.op + ": reader closed")
	}
	return nil
}
