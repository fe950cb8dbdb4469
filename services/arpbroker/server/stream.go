package server

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/grpcserver"
)

// streamWindow bounds the reports of one stream being judged at once. A host taking over many
// VIPs reports them all at once; judged one after the other, each would wait for the commit of
// the one before.
const streamWindow = 64

type reportStream = grpc.BidiStreamingServer[arpbrokerv1.StreamArpAnnouncementsRequest, arpbrokerv1.StreamArpAnnouncementsResponse]

// StreamArpAnnouncements judges a stream of reports, up to streamWindow at once, and answers
// each in the order it came. Reports of the same VIP are judged in their order: a later
// announcement is never decided before an earlier one.
func (s *Server) StreamArpAnnouncements(stream reportStream) error {
	ctx := stream.Context()
	reportStreams.Add(ctx, 1)
	defer reportStreams.Add(ctx, -1)

	// answers holds the answers to come, in the order the reports came: the one the sender
	// waits for, and up to streamWindow-1 more.
	answers := make(chan chan *arpbrokerv1.StreamArpAnnouncementsResponse, streamWindow-1)
	var sendFailed atomic.Bool
	sent := make(chan error, 1)
	go func() { sent <- sendInOrder(stream, answers, &sendFailed) }()
	var vips vipOrder
	var recvErr error
	for !sendFailed.Load() {
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
			defer done()
			answer <- s.answer(stream, req.GetReport(), received)
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

// answer judges one report of a stream. A panic is answered Internal, as a unary call's is,
// rather than ending the process.
func (s *Server) answer(stream reportStream, req *arpbrokerv1.ReportArpAnnouncementRequest, received time.Time) *arpbrokerv1.StreamArpAnnouncementsResponse {
	out := &arpbrokerv1.StreamArpAnnouncementsResponse{}
	res, err := func() (_ *arpbrokerv1.ReportArpAnnouncementResponse, err error) {
		defer grpcserver.RecoverPanic(s.log, arpbrokerv1.ArpBrokerService_StreamArpAnnouncements_FullMethodName, &err)
		return s.report(stream.Context(), req, received)
	}()
	if err != nil {
		st := apierr.ToStatus(err)
		out.ErrorCode, out.ErrorMessage = int32(st.Code()), st.Message()
	} else {
		out.Result = res
	}
	return out
}

// sendInOrder sends each answer as it is ready, in the order of answers, until answers is
// closed. After a failed send it sets failed, sends nothing more, and returns that error.
func sendInOrder(stream reportStream, answers <-chan chan *arpbrokerv1.StreamArpAnnouncementsResponse, failed *atomic.Bool) error {
	var err error
	for answer := range answers {
		if err != nil {
			continue // the judges' answers are buffered, and dropped
		}
		if err = stream.Send(<-answer); err != nil {
			failed.Store(true)
		}
	}
	return err
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

// closed is a channel closed from the start.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// maxJudges is how many reports the streams of one replica judge at once. More would not commit
// sooner (txnbatch commits about 60 claims a batch, three batches at a time), and a goroutine
// per report beyond them costs more than it gives: the mass failover (BenchmarkMassFailover:
// 10,000 reports on 200 streams) took 890–1,005 ms with a goroutine per report beyond 256
// against 565–612 ms with 256 judges.
const maxJudges = 256

// judges runs the streams' reports on at most maxJudges goroutines, kept from one report to the
// next: a new goroutine per report would grow its stack, copying it, on every report. A report
// that finds every judge busy waits for the first one free; reports that wait are taken in the
// order they came (each stream has one waiting at most: its receiving loop, or a report of a VIP
// judged a moment ago), and a report's time waiting counts in its claimTimeout.
type judges struct {
	work chan func() // unbuffered: a send is taken by an idle judge
	quit chan struct{}
	once sync.Once

	mu sync.Mutex
	n  int
}

func newJudges() *judges { return &judges{work: make(chan func()), quit: make(chan struct{})} }

// run runs f on an idle judge, on a new one while there are fewer than maxJudges, or else on
// the first judge to be free. After close, f runs on a goroutine of its own.
func (j *judges) run(f func()) {
	select {
	case j.work <- f:
		return
	default:
	}
	j.mu.Lock()
	start := j.n < maxJudges
	if start {
		j.n++
	}
	j.mu.Unlock()
	if start {
		go j.judge(f)
		return
	}
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
