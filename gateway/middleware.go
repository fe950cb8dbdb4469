package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/tracing"
)

// RequestIDHeader is the HTTP header carrying the request ID, both ways.
const RequestIDHeader = "X-Request-Id"

// RequestIDHeaderMD is the gRPC metadata key the services receive the request ID in.
const RequestIDHeaderMD = "x-request-id"

var tracer = otel.Tracer("github.com/openhavip/havip/gateway")

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	accountKey
)

// RequestIDOf returns the request ID of a request's context.
func RequestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func accountOf(ctx context.Context) string {
	a, _ := ctx.Value(accountKey).(string)
	return a
}

// statusRecorder remembers the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requestID gives every request an ID (the client's X-Request-Id when well formed, a new one
// otherwise), returns it on the response, carries the caller's W3C trace context, and logs
// the request when it ends.
func (g *Gateway) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = g.newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
		var span trace.Span
		if g.spans {
			// A span per request under the caller's trace, carrying the request ID.
			ctx, span = tracer.Start(ctx, r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path), attribute.String("request_id", id)))
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
			span.End()
		}
		g.cfg.Log.LogAttrs(ctx, levelFor(rec.status), "http request", slogAttrs(r, rec.status, id, time.Since(start))...)
	})
}

// newRequestID returns an ID unique to this request: the gateway's random prefix and a counter.
func (g *Gateway) newRequestID() string {
	return g.idPrefix + strconv.FormatUint(g.idCounter.Add(1), 16)
}

// authenticate lets through only requests with a known API key, acting for the key's account;
// it also bounds the body and the time given to the services. The key itself goes no further.
func (g *Gateway) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := apikey.Bearer(r.Header.Get("Authorization"))
		account, known := g.cfg.Keys.Account(key)
		if !ok || !known {
			w.Header().Set("WWW-Authenticate", `Bearer realm="havip"`)
			g.writeProblem(w, r, http.StatusUnauthorized, apierr.ReasonAuthFailure, "a valid API key is required: Authorization: Bearer <key>")
			return
		}
		r.Header.Del("Authorization")
		if r.ContentLength > g.cfg.MaxBodyBytes {
			g.tooLarge(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				g.tooLarge(w, r)
				return
			case err != nil:
				g.writeProblem(w, r, http.StatusBadRequest, apierr.ReasonMalformed, "reading the request body: "+err.Error())
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		trace.SpanFromContext(r.Context()).SetAttributes(tracing.Account.String(account)) // a no-op without a span
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), accountKey, account), g.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (g *Gateway) tooLarge(w http.ResponseWriter, r *http.Request) {
	g.writeProblem(w, r, http.StatusRequestEntityTooLarge, apierr.ReasonTooLong, "the request body is over the limit")
}

// levelFor is the access log level of a response status.
func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// slogAttrs are the access log fields of a request.
func slogAttrs(r *http.Request, status int, id string, d time.Duration) []slog.Attr {
	return []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.String("request_id", id), slog.Duration("duration", d),
	}
}
