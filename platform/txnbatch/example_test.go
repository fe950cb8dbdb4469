package txnbatch_test

import (
	"context"
	"fmt"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/txnbatch"
)

// Concurrent create-if-absent transactions: those that arrive together share one round trip,
// yet each caller gets its own verdict, and a loser reads what is there instead.
func ExampleBatcher() {
	cli, stop, err := etcdtest.StartClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	if _, err := cli.Put(ctx, "/names/bob", "acct-0"); err != nil { // taken already
		fmt.Println(err)
		return
	}

	b := txnbatch.New(cli) // one per client, shared by every caller
	names := []string{"ann", "bob", "cid"}
	results := make([]txnbatch.Result, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "/names/" + name
			results[i], errs[i] = b.Commit(ctx, txnbatch.Txn{
				Cmps: []clientv3.Cmp{clientv3.Compare(clientv3.Version(key), "=", 0)},
				Ops:  []clientv3.Op{clientv3.OpPut(key, "acct-1")},
				Else: []clientv3.Op{clientv3.OpGet(key)},
			})
		}()
	}
	wg.Wait()
	for i, name := range names {
		switch r := results[i]; {
		case errs[i] != nil:
			fmt.Println(name, errs[i])
		case r.Succeeded:
			fmt.Println(name, "created")
		default:
			fmt.Println(name, "taken by", string(r.Else[0].GetResponseRange().Kvs[0].Value))
		}
	}
	// Output:
	// ann created
	// bob taken by acct-0
	// cid created
}
