// Package txnbatch commits concurrent independent etcd transactions together, one round trip for many.
package txnbatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/metric"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/groupcommit"
	"github.com/openhavip/havip/platform/metrics"
)

// Txn is one caller's transaction: if every Cmp holds, Ops are applied; otherwise Else is read.
// Transactions given to one Batcher must not write a key another one compares (they are
// independent), as each is checked against the state before the batch.
type Txn struct {
	Cmps []clientv3.Cmp
	Ops  []clientv3.Op
	Else []clientv3.Op
}

// Result is the outcome of one Txn.
type Result struct {
	Succeeded bool
	Revision  int64
	// Else holds the responses of Txn.Else when it did not succeed.
	Else []*pb.ResponseOp
}

// maxOps keeps a batch under etcd's default limit of 128 operations per transaction list.
const maxOps = 120

// Batcher group-commits: transactions that arrive while one batch is in flight go together in
// the next. A batch that fails is retried one transaction at a time, so each caller gets its
// own answer.
type Batcher struct {
	cli *clientv3.Client

	mu    sync.Mutex
	queue groupcommit.Queue[*call]
}

type call struct {
	txn  Txn
	puts map[string]bool
	cmps []string // each comparison's wire form: equal comparisons of a batch are sent once
	done chan struct{}
	res  Result
	err  error
}

// New returns a batcher on cli.
func New(cli *clientv3.Client) *Batcher { return &Batcher{cli: cli} }

// Commit runs t, possibly together with others, and reports its own outcome.
func (b *Batcher) Commit(ctx context.Context, t Txn) (Result, error) {
	c, err := prepare(t)
	if err != nil {
		return Result{}, err
	}
	b.mu.Lock()
	if b.queue.Add(c) {
		go b.queue.Run(&b.mu, take, b.commit, nil)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// prepare makes the queued call of t: the keys it writes, and its comparisons' wire forms.
func prepare(t Txn) (*call, error) {
	c := &call{txn: t, done: make(chan struct{}), puts: map[string]bool{}, cmps: make([]string, len(t.Cmps))}
	for _, op := range t.Ops {
		c.puts[string(op.KeyBytes())] = true
	}
	for i, cmp := range t.Cmps {
		wire, err := (*pb.Compare)(&cmp).Marshal()
		if err != nil {
			return nil, fmt.Errorf("etcd comparison: %w", err)
		}
		c.cmps[i] = string(wire)
	}
	return c, nil
}

// maxScan bounds the waiting calls take looks at for one batch: a mass failover queues
// thousands, and looking at each of them for every batch would cost more than the commits.
const maxScan = 4 * maxOps

// take picks the next batch from pending, in order: as many calls as fit, no two writing one key.
// A comparison several calls share (a leader's fence, one ENI many claims move to) counts once.
// It stops at the first call that does not fit, or after maxScan calls; the calls it did not
// take keep their order.
func take(pending []*call) (batch, keep []*call) {
	keys := map[string]bool{}
	cmps := map[string]bool{}
	ops := 0
	for i, c := range pending {
		if i == maxScan {
			return batch, append(keep, pending[i:]...)
		}
		clash := false
		for k := range c.puts {
			clash = clash || keys[k]
		}
		added := 0
		for _, cmp := range c.cmps {
			if !cmps[cmp] {
				added++
			}
		}
		if len(batch) > 0 && clash {
			keep = append(keep, c)
			continue
		}
		// (A first call goes even when it is too large alone: etcd then answers it.)
		if len(batch) > 0 && (len(cmps)+added > maxOps || ops+len(c.txn.Ops) > maxOps) {
			return batch, append(keep, pending[i:]...)
		}
		for k := range c.puts {
			keys[k] = true
		}
		for _, cmp := range c.cmps {
			cmps[cmp] = true
		}
		ops += len(c.txn.Ops)
		batch = append(batch, c)
	}
	return batch, keep
}

// combine makes the one transaction of a batch: every call's comparisons, each distinct one
// once (the batch holds if all of them do: once is enough), and every call's operations.
func combine(batch []*call) ([]clientv3.Cmp, []clientv3.Op) {
	nCmps, nOps := 0, 0
	for _, c := range batch {
		nCmps, nOps = nCmps+len(c.txn.Cmps), nOps+len(c.txn.Ops)
	}
	cmps, ops := make([]clientv3.Cmp, 0, nCmps), make([]clientv3.Op, 0, nOps)
	seen := make(map[string]bool, nCmps)
	for _, c := range batch {
		for i, cmp := range c.txn.Cmps {
			if !seen[c.cmps[i]] {
				seen[c.cmps[i]] = true
				cmps = append(cmps, cmp)
			}
		}
		ops = append(ops, c.txn.Ops...)
	}
	return cmps, ops
}

func (b *Batcher) commit(batch []*call) {
	ctx, cancel := apierr.StoreTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(batch) > 1 {
		cmps, ops := combine(batch)
		resp, err := b.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		batchSize.Record(ctx, int64(len(batch)))
		if err == nil && resp.Succeeded {
			for _, c := range batch {
				c.res = Result{Succeeded: true, Revision: resp.Header.Revision}
				close(c.done)
			}
			return
		}
		splits.Add(ctx, 1) // one of them lost (or etcd failed): each goes on its own
	}
	// One at a time, so that each gets its own verdict.
	var wg sync.WaitGroup
	for _, c := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(c.done)
			resp, err := b.cli.Txn(ctx).If(c.txn.Cmps...).Then(c.txn.Ops...).Else(c.txn.Else...).Commit()
			if err != nil {
				c.err = fmt.Errorf("etcd transaction: %w", apierr.StoreErr(ctx, err))
				return
			}
			c.res = Result{Succeeded: resp.Succeeded, Revision: resp.Header.Revision}
			if !resp.Succeeded {
				c.res.Else = resp.Responses
			}
		}()
	}
	wg.Wait()
}

var meter = metrics.Meter("github.com/openhavip/havip/platform/txnbatch")

// batchSize is havip_etcd_txn_batch_size: the transactions committed as one.
var batchSize = metrics.Must(meter.Int64Histogram("havip.etcd.txn.batch.size", metric.WithUnit("{transaction}"),
	metric.WithExplicitBucketBoundaries(2, 4, 8, 16, 32, 64, 120),
	metric.WithDescription("Transactions committed together in one etcd transaction (txnbatch), per combined commit.")))

// splits is havip_etcd_txn_batch_splits_total: combined commits that failed, a comparison of
// one of their transactions most often (a conflict), whose transactions then went one by one.
var splits = metrics.Must(meter.Int64Counter("havip.etcd.txn.batch.splits", metric.WithUnit("{batch}"),
	metric.WithDescription("Combined etcd transactions (txnbatch) that failed, mostly on a conflict of one of them, and were committed one by one.")))
