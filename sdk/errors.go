package sdk

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// remoteError is an error that crossed the wire: its text is the remote
// side's, and errors.Is still finds the sentinel it was made from.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// toStatus renders an error for the wire, keeping the sentinel errors of
// this package and the context errors recognisable on the other side.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrPanicked):
		code = codes.Internal
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

// fromStatus turns an error returned by a gRPC call back into a Go error.
// When the caller's ctx has ended, its error wins: a call cut by its
// deadline reports context.DeadlineExceeded whatever the transport said.
func fromStatus(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &remoteError{msg: op + ": " + ctxErr.Error(), sentinel: ctxErr}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &remoteError{msg: op + ": " + err.Error(), sentinel: err}
	}
	msg := op + ": " + st.Message()
	switch st.Code() {
	case codes.NotFound:
		return &remoteError{msg: msg, sentinel: ErrNotFound}
	case codes.Unavailable:
		return &remoteError{msg: msg, sentinel: ErrUnavailable}
	case codes.DeadlineExceeded:
		return &remoteError{msg: msg, sentinel: context.DeadlineExceeded}
	case codes.Canceled:
		return &remoteError{msg: msg, sentinel: context.Canceled}
	case codes.Internal:
		if strings.HasPrefix(st.Message(), ErrPanicked.Error()) {
			return &remoteError{msg: msg, sentinel: ErrPanicked}
		}
	}
	return &remoteError{msg: msg}
}
