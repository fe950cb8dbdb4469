// Package retry reruns an optimistic etcd write that lost to a concurrent change.
package retry

import (
	"context"

	"github.com/openhavip/havip/platform/apierr"
)

// Attempts is how many times a write is tried before its caller is told to retry.
const Attempts = 8

// OnConflict runs try until it reports done or fails, at most Attempts times; a try reports not
// done when its transaction's comparisons failed (something it read changed). When every try
// lost, it returns an apierr.ErrConflict naming what kept changing.
func OnConflict(ctx context.Context, what string, try func(ctx context.Context) (done bool, err error)) error {
	for range Attempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := try(ctx)
		if err != nil || done {
			return err
		}
	}
	return apierr.Conflict("%s kept changing; try again", what)
}
