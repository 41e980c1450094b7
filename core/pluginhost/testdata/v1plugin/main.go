// Command v1plugin is a sink built the way plugins were before protocol
// version 2: it offers only version 1 in the handshake and serves the raw
// wildcat.plugin.v1 service without DeliverBatch (the generated
// Unimplemented stub answers it, as an older build's server would). The host
// must deliver to it one Deliver call per job.
package main

import (
	"context"
	"errors"
	"fmt"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/wildcathub/wildcat/sdk"
	pb "github.com/wildcathub/wildcat/sdk/proto/wildcat/plugin/v1"
)

type server struct {
	pb.UnimplementedPluginServer
	broker *plugin.GRPCBroker
	host   *grpc.ClientConn
}

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Name: "v1plugin", Version: "0.9.0", Capabilities: []pb.Capability{pb.Capability_CAPABILITY_SINK}}, nil
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	conn, err := s.broker.Dial(req.GetHostBrokerId())
	if err != nil {
		return nil, err
	}
	s.host = conn
	return &pb.ConfigureResponse{}, nil
}

// Deliver: target "ok" is delivered, anything else retried; the response
// names the call so the test sees which RPC carried the job.
func (s *server) Deliver(_ context.Context, req *pb.DeliverRequest) (*pb.DeliverResponse, error) {
	job := req.GetJob()
	if job.GetTarget() == "ok" {
		return &pb.DeliverResponse{Outcome: &pb.DeliverResponse_Ok{Ok: &pb.DeliverOK{}}, Status: 200, Response: "v1 Deliver " + job.GetId()}, nil
	}
	return &pb.DeliverResponse{Outcome: &pb.DeliverResponse_Retry{Retry: &pb.DeliverRetry{Reason: fmt.Sprintf("target %q is down", job.GetTarget())}}}, nil
}

type v1 struct{ plugin.NetRPCUnsupportedPlugin }

func (v1) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &server{broker: broker})
	return nil
}

func (v1) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("plugin side only")
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{1: {sdk.PluginKey: v1{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
