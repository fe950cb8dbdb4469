package etcdx

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TestRequireLeader: every call asks for a leader; a write refused for want of one is sent
// again until it passes, for LeaderWait at most; a read (which etcd's client retries) and
// other failures are not.
func TestRequireLeader(t *testing.T) {
	calls := 0
	failing := func(times int, err error) grpc.UnaryInvoker {
		calls = 0
		return func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			calls++
			if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(rpctypes.MetadataRequireLeaderKey)) == 0 {
				t.Error("a call without the require-leader metadata")
			}
			if calls <= times {
				return err
			}
			return nil
		}
	}
	ctx := context.Background()
	if err := requireLeader(ctx, txnMethod, nil, nil, nil, failing(3, rpctypes.ErrGRPCNoLeader)); err != nil || calls != 4 {
		t.Errorf("a Txn refused 3 times: %v after %d calls, want success after 4", err, calls)
	}
	if err := requireLeader(ctx, rangeMethod, nil, nil, nil, failing(3, rpctypes.ErrGRPCNoLeader)); !errors.Is(err, rpctypes.ErrGRPCNoLeader) || calls != 1 {
		t.Errorf("a Range: %v after %d calls, want no leader after 1", err, calls)
	}
	if err := requireLeader(ctx, txnMethod, nil, nil, nil, failing(3, rpctypes.ErrGRPCTimeout)); !errors.Is(err, rpctypes.ErrGRPCTimeout) || calls != 1 {
		t.Errorf("a Txn that timed out: %v after %d calls, want the timeout after 1 (it may have been applied)", err, calls)
	}
	start := time.Now()
	if err := requireLeader(ctx, txnMethod, nil, nil, nil, failing(1<<30, rpctypes.ErrGRPCNoLeader)); !errors.Is(err, rpctypes.ErrGRPCNoLeader) {
		t.Errorf("a Txn never let through: %v", err)
	}
	if took := time.Since(start); took < LeaderWait || took > LeaderWait+time.Second {
		t.Errorf("a Txn never let through gave up after %v, want about %v", took, LeaderWait)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_ = requireLeader(short, txnMethod, nil, nil, nil, failing(1<<30, rpctypes.ErrGRPCNoLeader))
	// It gives up by the caller's deadline, not after LeaderWait (a bound well under LeaderWait:
	// the wake-up after the deadline takes longer on a busy machine).
	if took := time.Since(start); took > LeaderWait/2 {
		t.Errorf("with 100 ms left, gave up after %v, want about 100 ms (LeaderWait is %v)", took, LeaderWait)
	}
}
