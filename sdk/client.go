package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/wildcathub/wildcat/core/event"
	pb "github.com/wildcathub/wildcat/sdk/proto/wildcat/plugin/v1"
)

// This file is the host's side of the protocol: what the daemon (and
// plugintest) use to talk to a plugin. Plugin authors never need it.

// PluginClient is the host's handle on one running plugin process, dispensed
// by go-plugin under PluginKey. Its methods are safe for concurrent use.
type PluginClient struct {
	version int
	client  pb.PluginClient
	health  healthpb.HealthClient
	broker  *plugin.GRPCBroker
	done    <-chan struct{}
}

func newPluginClient(ctx context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn, version int) *PluginClient {
	return &PluginClient{
		version: version,
		client:  pb.NewPluginClient(conn),
		health:  healthpb.NewHealthClient(conn),
		broker:  broker,
		done:    ctx.Done(),
	}
}

// ProtocolVersion is the plugin protocol negotiated with the process: 1,
// or 2 when it takes DeliverBatch.
func (c *PluginClient) ProtocolVersion() int { return c.version }

// Done is closed when the plugin process has exited.
func (c *PluginClient) Done() <-chan struct{} { return c.done }

// PluginInfo is what a plugin says about itself.
type PluginInfo struct {
	Name        string
	Version     string
	Description string
	// EventKinds are the kind patterns the plugin wants; empty means all.
	EventKinds []string
	// Capabilities follow from the interfaces the plugin implements.
	Capabilities []Capability
}

// Describe asks the plugin who it is.
func (c *PluginClient) Describe(ctx context.Context) (*PluginInfo, error) {
	resp, err := c.client.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return nil, fromStatus(ctx, "Describe", err)
	}
	return &PluginInfo{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		Description:  resp.GetDescription(),
		EventKinds:   resp.GetEventKinds(),
		Capabilities: capabilitiesFromProto(resp.GetCapabilities()),
	}, nil
}

// Configure serves host to the plugin over the broker and hands the plugin
// its name and config block. cfg must be JSON-encodable; it is normalised
// through JSON (so a YAML map arrives as map[string]any, numbers as float64).
// A nil host answers every call with ErrUnavailable.
func (c *PluginClient) Configure(ctx context.Context, name string, cfg map[string]any, host Host) error {
	st, err := configStruct(cfg)
	if err != nil {
		return fmt.Errorf("config of plugin %q: %w", name, err)
	}
	if host == nil {
		host = noHost{}
	}
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterHostServer(s, &hostServer{host: host})
		return s
	})
	_, err = c.client.Configure(ctx, &pb.ConfigureRequest{Name: name, Config: st, HostBrokerId: id})
	return fromStatus(ctx, "Configure", err)
}

func configStruct(cfg map[string]any) (*structpb.Struct, error) {
	if len(cfg) == 0 {
		return &structpb.Struct{}, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return structpb.NewStruct(m)
}

// Handle makes one inline call.
func (c *PluginClient) Handle(ctx context.Context, ev *event.Event) ([]Action, error) {
	resp, err := c.client.Handle(ctx, &pb.HandleRequest{Event: pb.EventFromCore(ev)})
	if err != nil {
		return nil, fromStatus(ctx, "Handle", err)
	}
	return actionsFromProto(resp.GetActions())
}

// Deliver makes one sink attempt. An error means the attempt did not
// complete (transport, panic, deadline); a Result is the plugin's verdict.
func (c *PluginClient) Deliver(ctx context.Context, job *Job) (Result, error) {
	resp, err := c.client.Deliver(ctx, &pb.DeliverRequest{Job: jobToProto(job)})
	if err != nil {
		return Result{}, fromStatus(ctx, "Deliver", err)
	}
	return resultFromProto(resp)
}

// ErrNoBatch: the plugin negotiated protocol version 1, which has no
// DeliverBatch; deliver its jobs one by one.
var ErrNoBatch = errors.New("the plugin speaks protocol version 1: no batch delivery")

// DeliverBatch makes one attempt of each job (protocol version 2; ErrNoBatch
// on a version-1 plugin), in one call unless the jobs together are larger
// than MaxBatchBytes: then in several, made concurrently. results[i] is the
// plugin's verdict on jobs[i]; the jobs of a call that did not complete
// (transport, deadline, panic) are answered with Retry, and err joins those
// calls' errors.
func (c *PluginClient) DeliverBatch(ctx context.Context, jobs []*Job) (results []Result, err error) {
	if c.version < 2 {
		return nil, ErrNoBatch
	}
	results = make([]Result, len(jobs))
	var calls [][2]int // [from, to) of jobs
	pjs := make([]*pb.Job, len(jobs))
	size, from := 0, 0
	for i, job := range jobs {
		pjs[i] = jobToProto(job)
		n := proto.Size(pjs[i])
		if i > from && size+n > MaxBatchBytes {
			calls = append(calls, [2]int{from, i})
			from, size = i, 0
		}
		size += n
	}
	if len(jobs) > 0 {
		calls = append(calls, [2]int{from, len(jobs)})
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for ci, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[ci] = c.deliverBatch(ctx, pjs[call[0]:call[1]], jobs[call[0]:call[1]], results[call[0]:call[1]])
		}()
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// MaxBatchBytes is the most job data one DeliverBatch call carries; the
// plugin side accepts calls of twice that.
const MaxBatchBytes = 16 << 20

func (c *PluginClient) deliverBatch(ctx context.Context, pjs []*pb.Job, jobs []*Job, out []Result) error {
	resp, err := c.client.DeliverBatch(ctx, &pb.DeliverBatchRequest{Jobs: pjs})
	if err == nil && len(resp.GetResults()) != len(jobs) {
		err = fmt.Errorf("DeliverBatch answered %d results for %d jobs", len(resp.GetResults()), len(jobs))
	}
	if err != nil {
		err = fromStatus(ctx, "DeliverBatch", err)
		for i := range out {
			out[i] = Retry(err)
		}
		return err
	}
	for i, pr := range resp.GetResults() {
		r, rerr := resultFromProto(pr)
		if rerr != nil {
			r = Retry(fmt.Errorf("job %s: %w", jobs[i].ID, rerr))
		}
		out[i] = r
	}
	return nil
}

// Health is go-plugin's standard gRPC health check of the plugin process
// (service "plugin"), with ctx's deadline.
func (c *PluginClient) Health(ctx context.Context) error {
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if err != nil {
		return fromStatus(ctx, "health check", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health check: %s", resp.GetStatus())
	}
	return nil
}

// hostServer serves a Host to a plugin process.
type hostServer struct {
	pb.UnimplementedHostServer
	host Host
}

func (s *hostServer) SendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	if req.GetRequest() == nil {
		return nil, status.Error(codes.InvalidArgument, "SendMessage: no request")
	}
	id, err := s.host.SendMessage(ctx, req.GetAccountId(), SendRequestFromProto(req.GetRequest()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.SendMessageResponse{MessageId: id}, nil
}

func (s *hostServer) FetchMedia(req *pb.FetchMediaRequest, stream grpc.ServerStreamingServer[pb.Chunk]) error {
	rc, err := s.host.FetchMedia(stream.Context(), req.GetAccountId(), req.GetMessageId())
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	return toStatus(sendChunks(rc, func(b []byte) error { return stream.Send(&pb.Chunk{Data: b}) }))
}

func (s *hostServer) PutBlob(stream grpc.ClientStreamingServer[pb.PutBlobRequest, pb.BlobInfo]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	pi := first.GetInfo()
	if pi == nil {
		return status.Error(codes.InvalidArgument, "PutBlob: the first message must carry the blob's info")
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			m, err := stream.Recv()
			if err == io.EOF {
				_ = pw.Close()
				return
			}
			if err != nil {
				_ = pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(m.GetData()); err != nil {
				return // the reader gave up; its error is PutBlob's
			}
		}
	}()
	info, err := s.host.PutBlob(stream.Context(), blobInfoFromProto(pi), pr)
	_ = pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(blobInfoToProto(info))
}

func (s *hostServer) GetBlob(req *pb.GetBlobRequest, stream grpc.ServerStreamingServer[pb.GetBlobResponse]) error {
	rc, info, err := s.host.GetBlob(stream.Context(), req.GetId())
	if err != nil {
		return toStatus(err)
	}
	defer rc.Close()
	if err := stream.Send(&pb.GetBlobResponse{Part: &pb.GetBlobResponse_Info{Info: blobInfoToProto(info)}}); err != nil {
		return err
	}
	return toStatus(sendChunks(rc, func(b []byte) error {
		return stream.Send(&pb.GetBlobResponse{Part: &pb.GetBlobResponse_Data{Data: b}})
	}))
}

func (s *hostServer) KVGet(ctx context.Context, req *pb.KVGetRequest) (*pb.KVGetResponse, error) {
	v, found, err := s.host.KVGet(ctx, req.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.KVGetResponse{Found: found, Value: v}, nil
}

func (s *hostServer) KVSet(ctx context.Context, req *pb.KVSetRequest) (*pb.KVSetResponse, error) {
	var ttl time.Duration
	if req.GetTtl() != nil {
		ttl = req.GetTtl().AsDuration()
	}
	if err := s.host.KVSet(ctx, req.GetKey(), req.GetValue(), ttl); err != nil {
		return nil, toStatus(err)
	}
	return &pb.KVSetResponse{}, nil
}

func (s *hostServer) KVDelete(ctx context.Context, req *pb.KVDeleteRequest) (*pb.KVDeleteResponse, error) {
	if err := s.host.KVDelete(ctx, req.GetKey()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.KVDeleteResponse{}, nil
}

func (s *hostServer) GetMessage(ctx context.Context, req *pb.GetMessageRequest) (*pb.GetMessageResponse, error) {
	m, err := s.host.GetMessage(ctx, req.GetAccountId(), req.GetMessageId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetMessageResponse{Message: pb.MessageFromCore(m)}, nil
}

func (s *hostServer) LinkMedia(ctx context.Context, req *pb.LinkMediaRequest) (*pb.LinkMediaResponse, error) {
	err := s.host.LinkMedia(ctx, MediaLink{
		AccountID: req.GetAccountId(), MessageID: req.GetMessageId(), MediaID: req.GetMediaId(),
		SHA256: req.GetSha256(), Size: req.GetSize(), Targets: req.GetTargets(), SkippedReason: req.GetSkippedReason(),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.LinkMediaResponse{}, nil
}

// sendChunks copies r to send in chunks of at most chunkSize bytes.
func sendChunks(r io.Reader, send func([]byte) error) error {
	buf := make([]byte, chunkSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if serr := send(buf[:n]); serr != nil {
				return serr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
