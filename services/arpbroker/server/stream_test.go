package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/authz"
	"github.com/openhavip/havip/platform/identity"
)

// fakeStream is an agent's stream: Recv hands out reqs, then io.EOF (or blocks until the
// context ends, when open is set); Send records the answers, and fails from the failAt-th
// (1-based; 0: never).
type fakeStream struct {
	grpc.ServerStream
	ctx    context.Context
	reqs   chan *arpbrokerv1.StreamArpAnnouncementsRequest
	open   bool
	failAt int

	mu   sync.Mutex
	sent []*arpbrokerv1.StreamArpAnnouncementsResponse
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*arpbrokerv1.StreamArpAnnouncementsRequest, error) {
	select {
	case r, ok := <-f.reqs:
		if ok {
			return r, nil
		}
		if !f.open {
			return nil, io.EOF
		}
	case <-f.ctx.Done():
		return nil, f.ctx.Err()
	}
	<-f.ctx.Done()
	return nil, f.ctx.Err()
}

func (f *fakeStream) Send(r *arpbrokerv1.StreamArpAnnouncementsResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAt > 0 && len(f.sent)+1 >= f.failAt {
		return errors.New("send failed")
	}
	f.sent = append(f.sent, r)
	return nil
}

// agentContext is a stream's context as the authorizer makes it on a plaintext server.
func agentContext(t *testing.T) context.Context {
	t.Helper()
	ctx, err := authz.New(nil, identity.ID{Kind: identity.Dev}, true).Authorize(t.Context(), "/arpbroker.v1.ArpBrokerService/StreamArpAnnouncements")
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// badReport is a report refused before the broker is asked (its ENI ID is malformed), naming i.
func badReport(i int) *arpbrokerv1.StreamArpAnnouncementsRequest {
	return &arpbrokerv1.StreamArpAnnouncementsRequest{Report: &arpbrokerv1.ReportArpAnnouncementRequest{
		NetworkInterfaceId: fmt.Sprintf("bad-%d", i), SenderIp: fmt.Sprintf("10.0.0.%d", i%3)}}
}

// TestStreamAnswersInOrder: every report gets its answer, in the order the reports came,
// error answers included, and the handler returns once the agent has closed its side.
func TestStreamAnswersInOrder(t *testing.T) {
	s := New(nil, nil, slog.Default())
	defer s.Close()
	f := &fakeStream{ctx: agentContext(t), reqs: make(chan *arpbrokerv1.StreamArpAnnouncementsRequest, 200)}
	for i := range 200 {
		f.reqs <- badReport(i)
	}
	close(f.reqs)
	if err := s.StreamArpAnnouncements(f); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 200 {
		t.Fatalf("%d answers to 200 reports", len(f.sent))
	}
	for i, r := range f.sent {
		if r.GetErrorCode() != int32(codes.InvalidArgument) || !strings.Contains(r.GetErrorMessage(), fmt.Sprintf(`"bad-%d"`, i)) {
			t.Fatalf("answer %d: %v", i, r)
		}
	}
}

// TestStreamPanicAnswered: a report whose judging panics (here: no broker behind the server)
// is answered Internal, the process goes on, and the reports after it are answered too.
func TestStreamPanicAnswered(t *testing.T) {
	s := New(nil, nil, slog.New(slog.DiscardHandler))
	defer s.Close()
	f := &fakeStream{ctx: agentContext(t), reqs: make(chan *arpbrokerv1.StreamArpAnnouncementsRequest, 3)}
	valid := &arpbrokerv1.StreamArpAnnouncementsRequest{Report: &arpbrokerv1.ReportArpAnnouncementRequest{NetworkInterfaceId: "eni-00000000", SenderIp: "10.0.0.1"}}
	f.reqs <- valid
	f.reqs <- valid // the same VIP: it waits for the one that panicked
	f.reqs <- badReport(7)
	close(f.reqs)
	if err := s.StreamArpAnnouncements(f); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 3 || f.sent[0].GetErrorCode() != int32(codes.Internal) || f.sent[1].GetErrorCode() != int32(codes.Internal) || f.sent[2].GetErrorCode() != int32(codes.InvalidArgument) {
		t.Fatalf("answers %v; want Internal, Internal, InvalidArgument", f.sent)
	}
}

// TestStreamEndsWhenSendFails: once an answer cannot be sent, the handler stops reading
// reports and returns the error, though the agent's side stays open.
func TestStreamEndsWhenSendFails(t *testing.T) {
	s := New(nil, nil, slog.Default())
	defer s.Close()
	f := &fakeStream{ctx: agentContext(t), reqs: make(chan *arpbrokerv1.StreamArpAnnouncementsRequest), open: true, failAt: 3}
	errc := make(chan error, 1)
	go func() { errc <- s.StreamArpAnnouncements(f) }()
	for i := 0; ; i++ {
		if i == 1000 { // the window is 64: it would have stopped reading long before
			t.Fatal("the handler still reads reports after its sends failed")
		}
		select {
		case f.reqs <- badReport(i):
			continue
		case err := <-errc:
			if err == nil || err.Error() != "send failed" {
				t.Fatalf("the handler returned %v, want the send's error", err)
			}
		}
		break
	}
	if len(f.sent) != 2 {
		t.Fatalf("%d answers sent before the failed one, want 2", len(f.sent))
	}
}

// TestJudgesAtMostMaxAtOnce: reports beyond maxJudges wait for a free judge, every one runs,
// the judges are kept for the next reports, and after close a report still runs.
func TestJudgesAtMostMaxAtOnce(t *testing.T) {
	j := newJudges()
	defer j.close()
	release := make(chan struct{})
	var running, most atomic.Int64
	var done sync.WaitGroup
	started := make(chan struct{}, maxJudges+10)
	for range maxJudges + 10 {
		done.Add(1)
		go j.run(func() {
			defer done.Done()
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			started <- struct{}{}
			<-release
			running.Add(-1)
		})
	}
	for range maxJudges {
		<-started
	}
	if n := running.Load(); n != maxJudges {
		t.Fatalf("%d reports judged at once, want %d", n, maxJudges)
	}
	close(release)
	done.Wait()
	if m := most.Load(); m != maxJudges {
		t.Fatalf("at most %d at once, want %d", m, maxJudges)
	}
	j.mu.Lock()
	n := j.n
	j.mu.Unlock()
	if n != maxJudges {
		t.Fatalf("%d judges started, want %d", n, maxJudges)
	}
	j.close()
	ran := make(chan struct{})
	j.run(func() { close(ran) })
	<-ran
}

// TestVipOrder: a report waits for the report of its VIP before it, and for no other.
func TestVipOrder(t *testing.T) {
	var o vipOrder
	a1, done1 := o.next("10.0.0.1")
	a2, done2 := o.next("10.0.0.1")
	b1, doneB := o.next("10.0.0.2")
	isClosed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	if !isClosed(a1) || !isClosed(b1) {
		t.Fatal("a first report of a VIP waits")
	}
	if isClosed(a2) {
		t.Fatal("a second report of a VIP does not wait for the first")
	}
	done1()
	if !isClosed(a2) {
		t.Fatal("the first report judged, the second still waits")
	}
	done2()
	doneB()
	if len(o.last) != 0 {
		t.Fatalf("%d VIPs still chained after every report was judged", len(o.last))
	}
}
