package apierr

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StoreUnavailable reports whether err is etcd failing to answer for now: no leader, a leader
// change, a request that timed out in raft, a stopped or unhealthy member (etcd's errors of code
// Unavailable, as its client returns them), too many requests waiting for raft to apply, or a
// write raft dropped (ProposalDropped).
func StoreUnavailable(err error) bool {
	var ee rpctypes.EtcdError
	return errors.As(err, &ee) && (ee.Code() == codes.Unavailable || errors.Is(err, rpctypes.ErrTooManyRequests)) || ProposalDropped(err)
}

// proposalDropped is the message of raft's ErrProposalDropped (go.etcd.io/raft/v3), which etcd
// has no gRPC error for: it answers codes.Unknown with the message.
const proposalDropped = "raft proposal dropped"

// ProposalDropped reports whether err is etcd's answer to a write that raft dropped rather than
// appended to its log: the member has just lost its leader (a candidate, or a follower that
// knows none yet, though it still knew one when it took the call) or hands leadership over. The
// write was never proposed: like "no leader", it may be sent again, and it is not an internal
// error.
func ProposalDropped(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return false
	}
	st := se.GRPCStatus()
	return st.Code() == codes.Unknown && st.Message() == proposalDropped
}

// StoreTimeout is context.WithTimeout for etcd calls the platform makes on its own behalf, not
// bounded by a caller (a batch of writes): when d passes, StoreErr makes the call's error a
// ReasonStoreUnavailable rather than the caller's own DeadlineExceeded.
func StoreTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, New(ReasonStoreUnavailable, "etcd did not answer within %v", d))
}

// StoreErr returns err, or the ReasonStoreUnavailable error wrapping it when ctx (from
// StoreTimeout) ended by its timeout.
func StoreErr(ctx context.Context, err error) error {
	var de *Error
	if err != nil && errors.As(context.Cause(ctx), &de) && de.Reason == ReasonStoreUnavailable {
		return &Error{Reason: de.Reason, Message: de.Message + ": " + err.Error()}
	}
	return err
}
