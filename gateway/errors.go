package gateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/tracing"
)

// Problem is the JSON body of every error response.
type Problem struct {
	// Code is the gRPC code's name, e.g. "NotFound".
	Code string `json:"code"`
	// HTTPStatus repeats the response's status.
	HTTPStatus int `json:"http_status"`
	// Reason is the machine-readable reason, e.g. "InvalidParameterValue.Reserved".
	Reason string `json:"reason"`
	// Message says what went wrong.
	Message string `json:"message"`
	// RequestID identifies the request in the logs.
	RequestID string `json:"request_id"`
}

// defaultReasons name the errors that come without a reason (from gRPC itself, or a service
// that passed a status through): each is a reason whose code in the error table is that code.
var defaultReasons = map[codes.Code]string{
	codes.InvalidArgument:    apierr.ReasonInvalidParameter,
	codes.NotFound:           apierr.ReasonResourceNotFound,
	codes.Unauthenticated:    apierr.ReasonAuthFailure,
	codes.Unimplemented:      apierr.ReasonMethodNotAllowed,
	codes.DeadlineExceeded:   apierr.ReasonTimeout,
	codes.Canceled:           apierr.ReasonCanceled,
	codes.Unavailable:        apierr.ReasonUnavailable,
	codes.FailedPrecondition: apierr.ReasonUnsupportedOperation,
	codes.Aborted:            apierr.ReasonConflict,
}

// RetryAfter is the Retry-After header (in seconds) of every 503: long enough for etcd to elect
// a leader or a replica to come back, short enough that a client's next try sees it. Clients
// that retry sooner get 503 again, which costs nothing.
const RetryAfter = "1"

// writeProblem answers with a reason of the error table: the code is the table's for that
// reason, so the gateway's own refusals keep the rule the services keep (one reason, one code).
func (g *Gateway) writeProblem(w http.ResponseWriter, r *http.Request, httpStatus int, reason, msg string) {
	code := apierr.Code(reason)
	trace.SpanFromContext(r.Context()).SetAttributes(tracing.Reason.String(reason)) // a no-op without a span
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if httpStatus == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", RetryAfter)
	}
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(Problem{Code: code.String(), HTTPStatus: httpStatus, Reason: reason, Message: msg, RequestID: RequestIDOf(r.Context())})
}

// writeError answers a failed call with the HTTP status that fits its gRPC code.
func (g *Gateway) writeError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	reason := apierr.Reason(err)
	if apierr.Code(reason) != st.Code() { // no reason, or one the table gives another code
		reason = defaultReasons[st.Code()]
		if reason == "" {
			reason = apierr.ReasonInternal
		}
	}
	g.writeProblem(w, r, runtime.HTTPStatusFromCode(apierr.Code(reason)), reason, st.Message())
}

// routingError answers requests no route takes.
func (g *Gateway) routingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		g.writeProblem(w, r, httpStatus, apierr.ReasonMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	case http.StatusBadRequest:
		g.writeProblem(w, r, httpStatus, apierr.ReasonMalformed, "malformed path "+r.URL.Path)
	default:
		g.writeProblem(w, r, http.StatusNotFound, apierr.ReasonUnknownRoute, "no route "+r.Method+" "+r.URL.Path)
	}
}
