package gateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
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

// defaultReasons name the errors that come without a reason (the gateway's own).
var defaultReasons = map[codes.Code]string{
	codes.InvalidArgument:    apierr.ReasonInvalidParameter,
	codes.NotFound:           apierr.ReasonResourceNotFound,
	codes.Unauthenticated:    apierr.ReasonAuthFailure,
	codes.Unimplemented:      apierr.ReasonMethodNotAllowed,
	codes.DeadlineExceeded:   apierr.ReasonInternal,
	codes.Unavailable:        apierr.ReasonUnavailable,
	codes.Internal:           apierr.ReasonInternal,
	codes.Unknown:            apierr.ReasonInternal,
	codes.FailedPrecondition: apierr.ReasonUnsupportedOperation,
}

func (g *Gateway) writeProblem(w http.ResponseWriter, r *http.Request, httpStatus int, code codes.Code, reason, msg string) {
	if reason == "" {
		reason = defaultReasons[code]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(Problem{Code: code.String(), HTTPStatus: httpStatus, Reason: reason, Message: msg, RequestID: RequestIDOf(r.Context())})
}

// writeError answers a failed call with the HTTP status that fits its gRPC code.
func (g *Gateway) writeError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	g.writeProblem(w, r, runtime.HTTPStatusFromCode(st.Code()), st.Code(), apierr.Reason(err), st.Message())
}

// routingError answers requests no route takes.
func (g *Gateway) routingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		g.writeProblem(w, r, httpStatus, codes.Unimplemented, apierr.ReasonMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
	case http.StatusBadRequest:
		g.writeProblem(w, r, httpStatus, codes.InvalidArgument, apierr.ReasonMalformed, "malformed path "+r.URL.Path)
	default:
		g.writeProblem(w, r, http.StatusNotFound, codes.NotFound, "UnknownRoute", "no route "+r.Method+" "+r.URL.Path)
	}
}
