package retry_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/openhavip/havip/platform/retry"
)

// fakeStream sends its messages, then fails.
type fakeStream struct{ msgs []int }

func (s *fakeStream) Recv() (int, error) {
	if len(s.msgs) == 0 {
		return 0, errors.New("broken")
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

// TestFollow: a broken stream is opened again, after a refused open too; every message is
// applied in order, an apply error does not end the stream, and Follow returns when ctx ends.
func TestFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []int
	opens := 0
	log := slog.New(slog.DiscardHandler)
	retry.Follow(ctx, log, "test", func(context.Context) (retry.Stream[int], error) {
		opens++
		switch opens {
		case 1:
			return &fakeStream{msgs: []int{1, 2}}, nil
		case 2:
			return nil, errors.New("refused")
		default:
			return &fakeStream{msgs: []int{3}}, nil
		}
	}, func(m int) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		if m == 3 {
			cancel()
		}
		if m == 1 {
			return errors.New("apply failed")
		}
		return nil
	})
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 || opens != 3 {
		t.Errorf("applied %v after %d opens; want [1 2 3] after 3", got, opens)
	}
}
