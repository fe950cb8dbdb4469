package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Health is the body of /healthz.
type Health struct {
	// Status is "SERVING" when every service behind the gateway is, "NOT_SERVING" otherwise.
	Status string `json:"status"`
	// Services gives each service's health, or the error reaching it.
	Services map[string]string `json:"services"`
}

// healthz asks each service behind the gateway for its gRPC health: 200 when all serve, 503
// otherwise.
func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	h := Health{Status: "SERVING", Services: map[string]string{}}
	for _, b := range g.backend {
		resp, err := healthpb.NewHealthClient(b.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: b.service})
		switch {
		case err != nil:
			h.Services[b.service] = "UNREACHABLE: " + err.Error()
		default:
			h.Services[b.service] = resp.GetStatus().String()
		}
		if h.Services[b.service] != healthpb.HealthCheckResponse_SERVING.String() {
			h.Status = "NOT_SERVING"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "SERVING" {
		w.Header().Set("Retry-After", RetryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}
