package retry

import (
	"context"
	"log/slog"
)

// Stream is the receiving side of a server stream.
type Stream[M any] interface{ Recv() (M, error) }

// Follow keeps a consumer in step with a server stream that sends a snapshot, then changes
// (WatchOwnership, WatchNatRules): it opens the stream, hands each message to apply, and when
// the stream breaks opens another (the new snapshot reconciles), waiting DefaultBackoff between
// failures in a row, until ctx ends. An error of apply is logged; the stream goes on.
func Follow[M any](ctx context.Context, log *slog.Logger, what string, open func(context.Context) (Stream[M], error), apply func(M) error) {
	for fails := 0; ctx.Err() == nil; {
		stream, err := open(ctx)
		for err == nil {
			var m M
			if m, err = stream.Recv(); err != nil {
				break
			}
			fails = 0
			if aerr := apply(m); aerr != nil {
				log.Warn(what, "err", aerr)
			}
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn(what+": the stream broke; opening another", "err", err)
		fails++
		DefaultBackoff.Wait(ctx, fails)
	}
}
