package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/wildcathub/wildcat/sdk/proto/wildcat/plugin/v1"
)

// grpcPlugin is the go-plugin plugin of one protocol version. On the
// plugin side it serves impl (every version serves the same service; a
// version-1 host just never calls DeliverBatch); on the host side it
// dispenses a *PluginClient that knows the negotiated version.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl    any
	version int
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer registers the Plugin service around impl (plugin side).
func (p *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.impl == nil {
		return fmt.Errorf("sdk: no plugin implementation to serve")
	}
	pb.RegisterPluginServer(s, &pluginServer{impl: p.impl, broker: broker, log: rootLogger()})
	return nil
}

// GRPCClient returns the host's handle on a running plugin (host side).
// ctx is cancelled when the plugin process exits.
func (p *grpcPlugin) GRPCClient(ctx context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return newPluginClient(ctx, broker, conn, p.version), nil
}

// pluginServer adapts the plugin's Go value to the Plugin service.
type pluginServer struct {
	pb.UnimplementedPluginServer
	impl   any
	broker *plugin.GRPCBroker

	mu       sync.RWMutex
	host     Host
	hostConn *grpc.ClientConn
	log      hclog.Logger
}

func (s *pluginServer) current() (Host, hclog.Logger) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.host == nil {
		return noHost{}, s.log
	}
	return s.host, s.log
}

// callCtx equips a request's context with the host and a logger.
func (s *pluginServer) callCtx(ctx context.Context, fields ...any) (context.Context, hclog.Logger) {
	host, log := s.current()
	if len(fields) > 0 {
		log = log.With(fields...)
	}
	return withLogger(WithHost(ctx, host), log), log
}

// guard runs fn, turning a panic into an ErrPanicked error after logging
// it with its stack. The plugin process keeps serving.
func guard(log hclog.Logger, op string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error(op+" panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "%s in %s: %v", ErrPanicked, op, r)
		}
	}()
	return fn()
}

func (s *pluginServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	var d Description
	if ds, ok := s.impl.(Describer); ok {
		if err := guard(s.log, "Describe", func() error { d = ds.Describe(); return nil }); err != nil {
			return nil, err
		}
	}
	if d.Name == "" {
		d.Name = filepath.Base(os.Args[0])
	}
	return &pb.DescribeResponse{
		Name:         d.Name,
		Version:      d.Version,
		Description:  d.Description,
		Capabilities: capabilitiesToProto(capabilities(s.impl)),
		EventKinds:   d.EventKinds,
	}, nil
}

func (s *pluginServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	conn, err := s.broker.Dial(req.GetHostBrokerId())
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "dial the host services: %v", err)
	}
	s.mu.Lock()
	old := s.hostConn
	s.host, s.hostConn = &hostClient{c: pb.NewHostClient(conn)}, conn
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	c, ok := s.impl.(Configurer)
	if !ok {
		return &pb.ConfigureResponse{}, nil
	}
	cfg := req.GetConfig().AsMap()
	cctx, log := s.callCtx(ctx)
	if err := guard(log, "Configure", func() error { return c.Configure(cctx, cfg) }); err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConfigureResponse{}, nil
}

func (s *pluginServer) Handle(ctx context.Context, req *pb.HandleRequest) (*pb.HandleResponse, error) {
	h, ok := s.impl.(Handler)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "this plugin is not inline (it implements no sdk.Handler)")
	}
	ev := pb.EventToCore(req.GetEvent())
	if ev == nil {
		return nil, status.Error(codes.InvalidArgument, "Handle: no event")
	}
	cctx, log := s.callCtx(ctx, "event", ev.ID)
	var actions []Action
	err := guard(log, "Handle", func() error {
		var err error
		actions, err = h.Handle(cctx, ev)
		return err
	})
	if err != nil {
		return nil, toStatus(err)
	}
	pas, err := actionsToProto(actions)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Handle returned an invalid action: %v", err)
	}
	return &pb.HandleResponse{Actions: pas}, nil
}

func (s *pluginServer) Deliver(ctx context.Context, req *pb.DeliverRequest) (*pb.DeliverResponse, error) {
	sink, ok := s.impl.(Sink)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "this plugin is not a sink (it implements no sdk.Sink)")
	}
	job := jobFromProto(req.GetJob())
	if job.Event == nil {
		return nil, status.Error(codes.InvalidArgument, "Deliver: job has no event")
	}
	cctx, log := s.callCtx(ctx, "job", job.ID)
	var res Result
	if err := guard(log, "Deliver", func() error { res = sink.Deliver(cctx, job); return nil }); err != nil {
		return nil, err
	}
	out, err := resultToProto(res)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return out, nil
}

// DeliverBatch (protocol version 2) answers each job of the batch: through
// the plugin's BatchSink when it is one, else by calling Deliver for each
// job, BatchConcurrency at a time. A job's failure (a Retry, a Fail, a
// panic of its Deliver) is that job's result only.
func (s *pluginServer) DeliverBatch(ctx context.Context, req *pb.DeliverBatchRequest) (*pb.DeliverBatchResponse, error) {
	sink, ok := s.impl.(Sink)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "this plugin is not a sink (it implements no sdk.Sink)")
	}
	jobs := make([]*Job, len(req.GetJobs()))
	for i, pj := range req.GetJobs() {
		jobs[i] = jobFromProto(pj)
		if jobs[i].Event == nil {
			return nil, status.Errorf(codes.InvalidArgument, "DeliverBatch: job %d (%s) has no event", i, jobs[i].ID)
		}
	}
	// Stop a little before the host's deadline, so that the answers of the
	// jobs that were delivered reach it rather than being lost with the call.
	bctx, cancel := batchCtx(ctx)
	defer cancel()
	cctx, log := s.callCtx(bctx, "jobs", len(jobs))
	var results []Result
	if bs, ok := s.impl.(BatchSink); ok {
		if err := guard(log, "DeliverBatch", func() error { results = bs.DeliverBatch(cctx, jobs); return nil }); err != nil {
			return nil, err
		}
		if len(results) != len(jobs) {
			return nil, status.Errorf(codes.Internal, "DeliverBatch returned %d results for %d jobs", len(results), len(jobs))
		}
	} else {
		results = deliverEach(cctx, log, sink, jobs, BatchConcurrency)
	}
	out := &pb.DeliverBatchResponse{Results: make([]*pb.DeliverResponse, len(results))}
	for i, r := range results {
		pr, err := resultToProto(r)
		if err != nil {
			// One malformed result is that job's retry, not the batch's loss.
			pr, _ = resultToProto(Retry(fmt.Errorf("job %s: %w", jobs[i].ID, err)))
		}
		out.Results[i] = pr
	}
	return out, nil
}

// batchCtx is ctx ending a tenth of its remaining time (at most a second)
// before it does: the margin for the answer to travel back.
func batchCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(dl)/10, time.Second)
	return context.WithDeadline(ctx, dl.Add(-margin))
}

// deliverEach calls sink.Deliver for every job, at most limit at a time.
// Jobs not started before ctx ends are answered with Retry without being
// attempted; a panicking Deliver is its job's Retry.
func deliverEach(ctx context.Context, log hclog.Logger, sink Sink, jobs []*Job, limit int) []Result {
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = Retry(fmt.Errorf("not attempted before the batch's deadline: %w", ctx.Err()))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			jlog := log.With("job", job.ID)
			jctx := withLogger(ctx, jlog)
			if err := guard(jlog, "Deliver", func() error { results[i] = sink.Deliver(jctx, job); return nil }); err != nil {
				results[i] = Retry(errors.New(status.Convert(err).Message()))
			}
		}()
	}
	wg.Wait()
	return results
}

func jobFromProto(pj *pb.Job) *Job {
	return &Job{ID: pj.GetId(), Event: pb.EventToCore(pj.GetEvent()), Target: pj.GetTarget(), Attempt: int(pj.GetAttempt()),
		TargetConfig: pj.GetTargetConfig()}
}

func jobToProto(job *Job) *pb.Job {
	return &pb.Job{Id: job.ID, Event: pb.EventFromCore(job.Event), Target: job.Target, Attempt: uint32(max(job.Attempt, 0)),
		TargetConfig: job.TargetConfig}
}
