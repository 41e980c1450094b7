package sdk

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/wildcathub/wildcat/sdk/proto/wildcat/plugin/v1"
)

// Conversions between the SDK's Go types and wildcat.plugin.v1. Events use
// the proto package's own EventFromCore/EventToCore.

func actionsToProto(as []Action) ([]*pb.Action, error) {
	out := make([]*pb.Action, 0, len(as))
	for i, a := range as {
		pa := &pb.Action{}
		switch a.Kind {
		case ActionReply:
			if a.Message == nil {
				return nil, fmt.Errorf("action %d (reply): no message", i)
			}
			pa.Action = &pb.Action_Reply{Reply: &pb.Reply{Message: SendRequestToProto(a.Message), Quote: a.Quote}}
		case ActionSend:
			if a.Message == nil {
				return nil, fmt.Errorf("action %d (send): no message", i)
			}
			pa.Action = &pb.Action_Send{Send: &pb.Send{Message: SendRequestToProto(a.Message)}}
		case ActionDrop:
			pa.Action = &pb.Action_Drop{Drop: &pb.Drop{}}
		case ActionTag:
			pa.Action = &pb.Action_Tag{Tag: &pb.Tag{Tags: a.Tags}}
		case ActionAnnotate:
			pa.Action = &pb.Action_Annotate{Annotate: &pb.Annotate{Key: a.Key, Value: a.Value}}
		case ActionRoute:
			pa.Action = &pb.Action_Route{Route: &pb.Route{Sinks: a.Sinks}}
		default:
			return nil, fmt.Errorf("action %d: unknown kind %q", i, a.Kind)
		}
		out = append(out, pa)
	}
	return out, nil
}

func actionsFromProto(pas []*pb.Action) ([]Action, error) {
	out := make([]Action, 0, len(pas))
	for i, pa := range pas {
		switch x := pa.GetAction().(type) {
		case *pb.Action_Reply:
			out = append(out, Action{Kind: ActionReply, Message: SendRequestFromProto(x.Reply.GetMessage()), Quote: x.Reply.GetQuote()})
		case *pb.Action_Send:
			out = append(out, Action{Kind: ActionSend, Message: SendRequestFromProto(x.Send.GetMessage())})
		case *pb.Action_Drop:
			out = append(out, Action{Kind: ActionDrop})
		case *pb.Action_Tag:
			out = append(out, Action{Kind: ActionTag, Tags: x.Tag.GetTags()})
		case *pb.Action_Annotate:
			out = append(out, Action{Kind: ActionAnnotate, Key: x.Annotate.GetKey(), Value: x.Annotate.GetValue()})
		case *pb.Action_Route:
			out = append(out, Action{Kind: ActionRoute, Sinks: x.Route.GetSinks()})
		default:
			return nil, fmt.Errorf("action %d: unknown or empty action %T (a newer plugin protocol?)", i, x)
		}
	}
	return out, nil
}

// SendRequestToProto renders a SendRequest for the wire. nil gives nil.
func SendRequestToProto(r *SendRequest) *pb.SendRequest {
	if r == nil {
		return nil
	}
	p := &pb.SendRequest{
		To: r.To, Id: r.ID, Text: r.Text,
		Location: pb.LocationFromCore(r.Location),
		Contacts: pb.ContactsFromCore(r.Contacts),
		Mentions: r.Mentions,
	}
	if m := r.Media; m != nil {
		p.Media = &pb.MediaSend{Kind: m.Kind, Data: m.Data, BlobId: m.BlobID, Mimetype: m.Mimetype, Filename: m.Filename, Caption: m.Caption, Seconds: m.Seconds}
	}
	if x := r.Reaction; x != nil {
		p.Reaction = &pb.ReactionSend{MessageId: x.MessageID, Sender: x.Sender, FromMe: x.FromMe, Emoji: x.Emoji}
	}
	if x := r.Edit; x != nil {
		p.Edit = &pb.EditSend{MessageId: x.MessageID, Text: x.Text}
	}
	if x := r.Revoke; x != nil {
		p.Revoke = &pb.RevokeSend{MessageId: x.MessageID, Sender: x.Sender}
	}
	if x := r.Poll; x != nil {
		p.Poll = &pb.PollSend{Name: x.Name, Options: x.Options, SelectableCount: x.SelectableCount}
	}
	if x := r.ReplyTo; x != nil {
		p.ReplyTo = &pb.QuoteRef{MessageId: x.MessageID, Sender: x.Sender}
	}
	return p
}

// SendRequestFromProto converts a wire SendRequest. nil gives nil.
func SendRequestFromProto(p *pb.SendRequest) *SendRequest {
	if p == nil {
		return nil
	}
	r := &SendRequest{
		To: p.GetTo(), ID: p.GetId(), Text: p.GetText(),
		Location: pb.LocationToCore(p.GetLocation()),
		Contacts: pb.ContactsToCore(p.GetContacts()),
	}
	if len(p.GetMentions()) > 0 {
		r.Mentions = p.GetMentions()
	}
	if m := p.GetMedia(); m != nil {
		r.Media = &MediaSend{Kind: m.GetKind(), Data: m.GetData(), BlobID: m.GetBlobId(), Mimetype: m.GetMimetype(), Filename: m.GetFilename(), Caption: m.GetCaption(), Seconds: m.GetSeconds()}
	}
	if x := p.GetReaction(); x != nil {
		r.Reaction = &ReactionSend{MessageID: x.GetMessageId(), Sender: x.GetSender(), FromMe: x.GetFromMe(), Emoji: x.GetEmoji()}
	}
	if x := p.GetEdit(); x != nil {
		r.Edit = &EditSend{MessageID: x.GetMessageId(), Text: x.GetText()}
	}
	if x := p.GetRevoke(); x != nil {
		r.Revoke = &RevokeSend{MessageID: x.GetMessageId(), Sender: x.GetSender()}
	}
	if x := p.GetPoll(); x != nil {
		r.Poll = &PollSend{Name: x.GetName(), Options: x.GetOptions(), SelectableCount: x.GetSelectableCount()}
	}
	if x := p.GetReplyTo(); x != nil {
		r.ReplyTo = &QuoteRef{MessageID: x.GetMessageId(), Sender: x.GetSender()}
	}
	return r
}

func resultToProto(r Result) (*pb.DeliverResponse, error) {
	reason := ""
	if r.Err != nil {
		reason = r.Err.Error()
	}
	resp := &pb.DeliverResponse{Status: int32(r.Status), Response: r.Response}
	switch r.Outcome {
	case OutcomeOK:
		resp.Outcome = &pb.DeliverResponse_Ok{Ok: &pb.DeliverOK{}}
		return resp, nil
	case OutcomeRetry:
		rt := &pb.DeliverRetry{Reason: reason}
		if r.RetryAfter > 0 {
			rt.RetryAfter = durationpb.New(r.RetryAfter)
		}
		resp.Outcome = &pb.DeliverResponse_Retry{Retry: rt}
		return resp, nil
	case OutcomeFail:
		resp.Outcome = &pb.DeliverResponse_Fail{Fail: &pb.DeliverFail{Reason: reason, DisableTarget: r.DisableTarget}}
		return resp, nil
	}
	return nil, fmt.Errorf("Deliver returned a Result with unknown outcome %q: build it with sdk.OK, sdk.Retry, sdk.RetryAfter or sdk.Fail", r.Outcome)
}

func resultFromProto(p *pb.DeliverResponse) (Result, error) {
	status, response := int(p.GetStatus()), p.GetResponse()
	switch x := p.GetOutcome().(type) {
	case *pb.DeliverResponse_Ok:
		return Result{Outcome: OutcomeOK, Status: status, Response: response}, nil
	case *pb.DeliverResponse_Retry:
		var d time.Duration
		if ra := x.Retry.GetRetryAfter(); ra != nil {
			d = ra.AsDuration()
		}
		return Result{Outcome: OutcomeRetry, RetryAfter: d, Err: errors.New(x.Retry.GetReason()), Status: status, Response: response}, nil
	case *pb.DeliverResponse_Fail:
		return Result{Outcome: OutcomeFail, Err: errors.New(x.Fail.GetReason()), Status: status, Response: response,
			DisableTarget: x.Fail.GetDisableTarget()}, nil
	}
	return Result{}, fmt.Errorf("Deliver answered no outcome (a newer plugin protocol?)")
}

func capabilitiesToProto(cs []Capability) []pb.Capability {
	var out []pb.Capability
	for _, c := range cs {
		switch c {
		case CapabilityInline:
			out = append(out, pb.Capability_CAPABILITY_INLINE)
		case CapabilitySink:
			out = append(out, pb.Capability_CAPABILITY_SINK)
		}
	}
	return out
}

func capabilitiesFromProto(ps []pb.Capability) []Capability {
	var out []Capability
	for _, c := range ps {
		switch c {
		case pb.Capability_CAPABILITY_INLINE:
			out = append(out, CapabilityInline)
		case pb.Capability_CAPABILITY_SINK:
			out = append(out, CapabilitySink)
		}
	}
	return out
}
