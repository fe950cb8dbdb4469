package server

import (
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/apierr"
)

// streamWindow bounds the reports of one stream being judged at once. A host taking over many
// VIPs reports them all at once; judged one after the other, each would wait for the commit of
// the one before.
const streamWindow = 64

// StreamArpAnnouncements judges a stream of reports, up to streamWindow at once, and answers
// each in the order it came. Reports of the same VIP are judged in their order: a later
// announcement is never decided before an earlier one.
func (s *Server) StreamArpAnnouncements(stream grpc.BidiStreamingServer[arpbrokerv1.StreamArpAnnouncementsRequest, arpbrokerv1.StreamArpAnnouncementsResponse]) error {
	ctx := stream.Context()
	reportStreams.Add(ctx, 1)
	defer reportStreams.Add(ctx, -1)

	// answers holds each report's answer, in the order the reports came; its capacity is the
	// window, and the sender frees a place once an answer is sent.
	answers := make(chan chan *arpbrokerv1.StreamArpAnnouncementsResponse, streamWindow)
	sent := make(chan error, 1)
	go func() { sent <- sendInOrder(stream, answers) }()
	var vips vipOrder
	var recvErr error
	for {
		req, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		received := time.Now()
		answer := make(chan *arpbrokerv1.StreamArpAnnouncementsResponse, 1)
		answers <- answer
		after, done := vips.next(req.GetReport().GetSenderIp())
		judge := func() {
			out := &arpbrokerv1.StreamArpAnnouncementsResponse{}
			res, err := s.report(ctx, req.GetReport(), received)
			done()
			if err != nil {
				st := apierr.ToStatus(err)
				out.ErrorCode, out.ErrorMessage = int32(st.Code()), st.Message()
			} else {
				out.Result = res
			}
			answer <- out
		}
		select {
		case <-after:
			s.judges.run(judge)
		default: // the VIP's report before it is being judged: this one waits, holding no judge
			go func() {
				<-after
				s.judges.run(judge)
			}()
		}
	}
	close(answers)
	if err := <-sent; err != nil {
		return err
	}
	return recvErr
}

// sendInOrder sends each answer as it is ready, in the order of answers, until answers is
// closed. After a failed send it sends nothing more, and returns that error.
func sendInOrder(stream grpc.BidiStreamingServer[arpbrokerv1.StreamArpAnnouncementsRequest, arpbrokerv1.StreamArpAnnouncementsResponse], answers <-chan chan *arpbrokerv1.StreamArpAnnouncementsResponse) error {
	var failed error
	for answer := range answers {
		if failed != nil {
			continue // the stream is broken; the judges' answers are buffered and dropped
		}
		failed = stream.Send(<-answer)
	}
	return failed
}

// vipOrder chains the reports of each VIP on one stream, so that each is judged after the one
// before it.
type vipOrder struct {
	mu   sync.Mutex
	last map[string]chan struct{} // per VIP: closed when its latest report is judged
}

// next returns what a new report of vip waits for (closed when the one before it is judged, or
// already closed), and the func to call once it is judged.
func (o *vipOrder) next(vip string) (after <-chan struct{}, done func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[string]chan struct{}{}
	}
	prev, ok := o.last[vip]
	if !ok {
		prev = closed
	}
	mine := make(chan struct{})
	o.last[vip] = mine
	return prev, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.last[vip] == mine {
			delete(o.last, vip)
		}
		close(mine)
	}
}

// maxJudges is how many reports the streams of one replica judge at once; a report beyond them
// waits for a judge (and its stream for the report).
const maxJudges = 256

// judges runs the streams' reports on goroutines kept from one report to the next: a new
// goroutine per report would grow its stack, copying it, on every report.
type judges struct {
	work chan func() // unbuffered: a send is taken by an idle judge
	quit chan struct{}
	once sync.Once

	mu sync.Mutex
	n  int
}

func newJudges() *judges { return &judges{work: make(chan func()), quit: make(chan struct{})} }

// run runs f on an idle judge, on a new one while there are fewer than maxJudges, or else on
// the first judge to be free.
func (j *judges) run(f func()) {
	select {
	case j.work <- f:
		return
	default:
	}
	j.mu.Lock()
	if j.n < maxJudges {
		j.n++
		j.mu.Unlock()
		go j.judge(f)
		return
	}
	j.mu.Unlock()
	select {
	case j.work <- f:
	case <-j.quit:
		go f()
	}
}

// judge runs f, then whatever run hands it, until close.
func (j *judges) judge(f func()) {
	for {
		f()
		select {
		case f = <-j.work:
		case <-j.quit:
			return
		}
	}
}

// close ends the idle judges; a busy one ends after its report.
func (j *judges) close() { j.once.Do(func() { close(j.quit) }) }

// closed is a channel closed from the start.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
