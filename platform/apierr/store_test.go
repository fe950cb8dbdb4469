package apierr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/raft/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/openhavip/havip/platform/apierr"
)

// TestStoreUnavailable: etcd's failures to answer, as its client returns them (wrapped), are
// Unavailable with ReasonStoreUnavailable, and so is a write raft dropped; etcd's other errors
// stay Internal, and the caller's own deadline stays DeadlineExceeded.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	for _, err := range []error{rpctypes.ErrNoLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrStopped, rpctypes.ErrUnhealthy, rpctypes.ErrTooManyRequests} {
		st := apierr.ToStatus(fmt.Errorf("etcd transaction: %w", err))
		if st.Code() != codes.Unavailable || apierr.Reason(st.Err()) != apierr.ReasonStoreUnavailable {
			t.Errorf("%v → %v %q, want Unavailable %s", err, st.Code(), apierr.Reason(st.Err()), apierr.ReasonStoreUnavailable)
		}
	}
	// A write raft dropped: etcd answers Unknown with raft's message (its client passes it on).
	dropped := status.Error(codes.Unknown, raft.ErrProposalDropped.Error())
	if st := apierr.ToStatus(fmt.Errorf("etcd transaction: %w", dropped)); st.Code() != codes.Unavailable || apierr.Reason(st.Err()) != apierr.ReasonStoreUnavailable {
		t.Errorf("%v → %v %q, want Unavailable %s", dropped, st.Code(), apierr.Reason(st.Err()), apierr.ReasonStoreUnavailable)
	}
	for _, err := range []error{rpctypes.ErrNoSpace, rpctypes.ErrCompacted, errors.New("etcdserver: no leader"),
		status.Error(codes.Unknown, "something else"), status.Error(codes.Internal, raft.ErrProposalDropped.Error())} {
		if got := apierr.ToStatus(fmt.Errorf("etcd: %w", err)).Code(); got == codes.Unavailable {
			t.Errorf("%v → Unavailable", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if got := apierr.ToStatus(apierr.StoreErr(ctx, ctx.Err())).Code(); got != codes.DeadlineExceeded {
		t.Errorf("the caller's own deadline → %v, want DeadlineExceeded", got)
	}
}

// TestStoreTimeout: an etcd call the platform bounds itself, by StoreTimeout, that runs out of
// time is StoreUnavailable; one that fails otherwise keeps its error.
func TestStoreTimeout(t *testing.T) {
	t.Parallel()
	ctx, cancel := apierr.StoreTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-ctx.Done()
	err := apierr.StoreErr(ctx, fmt.Errorf("etcd transaction: %w", ctx.Err()))
	if st := apierr.ToStatus(err); st.Code() != codes.Unavailable || apierr.Reason(st.Err()) != apierr.ReasonStoreUnavailable {
		t.Errorf("own timeout → %v %q", st.Code(), apierr.Reason(st.Err()))
	}
	live, cancelLive := apierr.StoreTimeout(context.Background(), time.Minute)
	defer cancelLive()
	other := errors.New("disk")
	if got := apierr.StoreErr(live, other); !errors.Is(got, other) || apierr.Reason(got) != "" {
		t.Errorf("StoreErr changed an error before the timeout: %v", got)
	}
}
