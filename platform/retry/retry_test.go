package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/retry"
)

func TestOnConflict(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		doneAt    int // the try that reports done (0: never)
		failAt    int // the try that fails (0: never)
		wantTries int
		want      error
	}{
		{"first try wins", context.Background(), 1, 0, 1, nil},
		{"third try wins", context.Background(), 3, 0, 3, nil},
		{"an error stops at once", context.Background(), 0, 2, 2, boom},
		{"every try loses", context.Background(), 0, 0, retry.Attempts, apierr.ErrConflict},
		{"a canceled context stops", canceled, 1, 0, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tries := 0
			err := retry.OnConflict(tc.ctx, "HAVIP havip-1", func(context.Context) (bool, error) {
				tries++
				if tries == tc.failAt {
					return false, boom
				}
				return tries == tc.doneAt, nil
			})
			if tries != tc.wantTries || !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("tries %d err %v, want %d %v", tries, err, tc.wantTries, tc.want)
			}
		})
	}
}

func ExampleOnConflict() {
	tries := 0
	err := retry.OnConflict(context.Background(), "HAVIP havip-1", func(context.Context) (bool, error) {
		tries++
		return false, nil // a transaction whose comparison failed every time
	})
	fmt.Println(tries, err)
	// Output: 8 FailedOperation.Conflict: HAVIP havip-1 kept changing; try again
}
