package txnbatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/txnbatch"
)

// TestEachGetsItsOwnVerdict: concurrent transactions share round trips, yet each one whose
// comparison fails fails alone (with its Else read), and each one that can succeed does.
func TestEachGetsItsOwnVerdict(t *testing.T) {
	_, cli := etcdtest.Fresh(t)
	ctx := context.Background()
	for i := 0; i < 64; i += 2 { // every even key exists already
		if _, err := cli.Put(ctx, fmt.Sprintf("/k/%d", i), "old"); err != nil {
			t.Fatal(err)
		}
	}
	b := txnbatch.New(cli)
	var wg sync.WaitGroup
	results := make([]txnbatch.Result, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("/k/%d", i)
			var err error
			results[i], err = b.Commit(ctx, txnbatch.Txn{
				Cmps: []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), "=", 0)},
				Ops:  []clientv3.Op{clientv3.OpPut(key, "new")},
				Else: []clientv3.Op{clientv3.OpGet(key)},
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		resp, err := cli.Get(ctx, fmt.Sprintf("/k/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		val := string(resp.Kvs[0].Value)
		if even := i%2 == 0; r.Succeeded == even || (even && (val != "old" || string(r.Else[0].GetResponseRange().Kvs[0].Value) != "old")) || (!even && val != "new") {
			t.Errorf("key %d: succeeded=%v value=%q", i, r.Succeeded, val)
		}
	}
}
