package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"

	"github.com/openhavip/havip/platform/apikey"
	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/identity"
	"github.com/openhavip/havip/platform/inproc"
	"github.com/openhavip/havip/platform/tenant"
)

// blockingHaVips answers DescribeHaVips once released, telling when a call has arrived.
type blockingHaVips struct {
	havipv1.UnimplementedHaVipServiceServer
	arrived chan string
	release chan struct{}
}

func (b *blockingHaVips) DescribeHaVips(ctx context.Context, req *havipv1.DescribeHaVipsRequest) (*havipv1.DescribeHaVipsResponse, error) {
	account, _ := tenant.Account(ctx)
	b.arrived <- account
	<-b.release
	return &havipv1.DescribeHaVipsResponse{TotalCount: uint32(len(req.GetHavipIds()))}, nil
}

// TestServeDrains: on shutdown the gateway stops accepting connections but lets a request in
// flight finish; the service saw the key's account.
func TestServeDrains(t *testing.T) {
	key := apikey.New()
	keys, err := apikey.Parse(strings.NewReader(apikey.Line("acct-drain", key)))
	if err != nil {
		t.Fatal(err)
	}
	svc := &blockingHaVips{arrived: make(chan string, 1), release: make(chan struct{})}
	local := inproc.New()
	// In process, as the gateway's own identity, which may assert the key's account.
	local.SetInterceptor(authz.New(nil, identity.ID{Kind: identity.Gateway}, false).UnaryServerInterceptor())
	havipv1.RegisterHaVipServiceServer(local, svc)
	local.Ready()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := New(context.Background(), Config{IpamAddr: "127.0.0.1:1", HaVipAddr: "127.0.0.1:1", EipAddr: "127.0.0.1:1", Local: local, Keys: keys, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, lis, 10*time.Second) }()

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+lis.Addr().String()+"/v1/havips/havip-aaaaaaaa,havip-bbbbbbbb", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, string(b), err}
	}()
	if account := <-svc.arrived; account != "acct-drain" {
		t.Errorf("the service acted for %q", account)
	}
	cancel() // shutdown begins with the request in flight
	for {    // until the listener is closed: new connections are refused
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			break
		}
		_ = c.Close()
		time.Sleep(5 * time.Millisecond) // polling for the listener to close
	}
	close(svc.release)
	r := <-inflight
	var body struct {
		TotalCount int `json:"total_count"`
	}
	if r.err != nil || r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &body) != nil || body.TotalCount != 2 {
		t.Errorf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
