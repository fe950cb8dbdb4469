package kvcache

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Revisions fetches etcd's current revision with a linearizable read, sharing one read among
// concurrent callers. A caller only joins a read that starts after it arrived, so the revision it
// gets covers every write completed before its call.
type Revisions struct {
	cli *clientv3.Client

	mu      sync.Mutex
	running bool
	next    *revCall // the read the next arrivals join; it starts when the running one ends
}

type revCall struct {
	done chan struct{}
	rev  int64
	err  error
}

// NewRevisions returns a revision fetcher on cli.
func NewRevisions(cli *clientv3.Client) *Revisions { return &Revisions{cli: cli} }

// probeKey is read to learn the revision; it never exists.
const probeKey = "\x00revision-probe"

// readTimeout bounds one shared read, so a dead etcd fails callers instead of hanging them.
const readTimeout = 10 * time.Second

// Current returns a revision at least as new as every write completed before the call.
func (r *Revisions) Current(ctx context.Context) (int64, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &revCall{done: make(chan struct{})}
	}
	call := r.next
	if !r.running {
		r.running = true
		r.next = nil
		go r.run(call)
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		return call.rev, call.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (r *Revisions) run(call *revCall) {
	for call != nil {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		resp, err := r.cli.Get(ctx, probeKey, clientv3.WithCountOnly())
		cancel()
		if err != nil {
			call.err = err
		} else {
			call.rev = resp.Header.Revision
		}
		close(call.done)
		r.mu.Lock()
		call = r.next
		r.next = nil
		if call == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}
