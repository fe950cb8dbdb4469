package idseq_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/idseq"
)

// endpoint is the embedded etcd every test of the package uses, each under keys of its own.
var endpoint string

func TestMain(m *testing.M) { os.Exit(etcdtest.Main(m, &endpoint)) }

// TestSourcesNeverRepeat: four sources on one counter (four replicas), each used by 8 goroutines
// at once for 3,000 IDs, then a fresh source (a restart): every ID is well formed and none
// repeats, across blocks and sources; another counter starts another sequence.
func TestSourcesNeverRepeat(t *testing.T) {
	t.Parallel()
	cli := etcdtest.Client(t, endpoint)
	const key = "/test/idseq/eip"
	var mu sync.Mutex
	seen := map[string]bool{}
	take := func(s *idseq.Source, n int) {
		for range n {
			id, err := s.Next(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			if seen[id] || !ids.Valid(ids.Address, id) {
				t.Errorf("ID %q repeated or malformed", id)
			}
			seen[id] = true
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		s := idseq.New(cli, key, ids.Address)
		for range 8 {
			wg.Go(func() { take(s, 3000) })
		}
	}
	wg.Wait()
	take(idseq.New(cli, key, ids.Address), 10)
	if len(seen) != 4*8*3000+10 {
		t.Fatalf("%d distinct IDs, want %d", len(seen), 4*8*3000+10)
	}
	resp, err := cli.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("counter: %v %v", resp, err)
	}
	// 24,000 IDs per source need 24 blocks of 1,024 each; the restart claims one more.
	if got := string(resp.Kvs[0].Value); !strings.HasSuffix(got, `,"next_block":97}`) {
		t.Errorf("counter %s, want 97 blocks claimed", got)
	}
	// Another counter (another installation) has a seed of its own: another sequence.
	other, err := idseq.New(cli, key+"-other", ids.Address).Next(context.Background())
	if err != nil || seen[other] {
		t.Errorf("another counter's first ID %q (%v) repeats this one's", other, err)
	}
}
