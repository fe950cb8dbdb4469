package agent

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
)

// brokenBroker opens report streams whose every Send fails, after filling the agent's report
// queue (as the ports do while a stream breaks).
type brokenBroker struct {
	arpbrokerv1.ArpBrokerServiceClient
	a       *Agent
	streams atomic.Int32
}

func (b *brokenBroker) StreamArpAnnouncements(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[arpbrokerv1.StreamArpAnnouncementsRequest, arpbrokerv1.StreamArpAnnouncementsResponse], error) {
	b.streams.Add(1)
	return &brokenStream{ctx: ctx, a: b.a}, nil
}

type brokenStream struct {
	grpc.ClientStream
	ctx context.Context
	a   *Agent
}

func (s *brokenStream) Send(*arpbrokerv1.StreamArpAnnouncementsRequest) error {
	for full := false; !full; {
		select {
		case s.a.reports <- announce("10.0.0.9", "eni-a", time.Now()):
		default:
			full = true
		}
	}
	return io.EOF
}

func (s *brokenStream) Recv() (*arpbrokerv1.StreamArpAnnouncementsResponse, error) {
	<-s.ctx.Done()
	return nil, s.ctx.Err()
}

func (s *brokenStream) CloseSend() error { return nil }

// TestReportSendFailsWithQueueFull: a report the stream could not send while the ports filled
// the queue does not stall the reporter (it alone reads the queue): it opens the next stream,
// and it ends with its context.
func TestReportSendFailsWithQueueFull(t *testing.T) {
	b := &brokenBroker{}
	a := New(Config{AgentID: "a", HostID: "h"}, b, slog.New(slog.DiscardHandler))
	b.a = a
	a.reports <- announce("10.0.0.9", "eni-a", time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.report(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for b.streams.Load() < 3 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the reporter opened %d streams in 10 s: stalled after a failed send", b.streams.Load())
		}
		time.Sleep(time.Millisecond) // polling the fake broker's count
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reporter did not end with its context")
	}
}
