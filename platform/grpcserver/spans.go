package grpcserver

import (
	"context"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/tenant"
	"github.com/openhavip/havip/platform/tracing"
)

// annotate puts on the call's span (when it records) the account it acts for and the IDs its
// request and response carry (tracing.MessageAttributes). It runs after authorization, which
// finds the account; the reason of a refusal is put by the error mapping (annotateRefusal).
func annotate(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return handler(ctx, req)
	}
	if a, ok := tenant.Account(ctx); ok {
		span.SetAttributes(tracing.Account.String(a))
	}
	span.SetAttributes(tracing.MessageAttributes(req)...)
	resp, err := handler(ctx, req)
	if err == nil {
		span.SetAttributes(tracing.MessageAttributes(resp)...)
	}
	return resp, err
}

// annotateRefusal puts the reason of a call's error (its status, as mapped) on the call's span.
func annotateRefusal(ctx context.Context, st *status.Status) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if reason := apierr.Reason(st.Err()); reason != "" {
		span.SetAttributes(tracing.Reason.String(reason))
	}
}

// annotateStream puts the account on a stream's span.
func annotateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if span := trace.SpanFromContext(ss.Context()); span.IsRecording() {
		if a, ok := tenant.Account(ss.Context()); ok {
			span.SetAttributes(tracing.Account.String(a))
		}
	}
	return handler(srv, ss)
}
