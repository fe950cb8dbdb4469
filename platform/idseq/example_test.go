package idseq_test

import (
	"context"
	"fmt"

	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/idseq"
)

// Each replica of a service has its own Source on the kind's counter key; none of them hands out
// an ID another one did, and a restarted replica continues after every block claimed before.
func Example() {
	ctx := context.Background()
	cli, err := etcdx.Connect(ctx, []string{endpoint}) // endpoint: an etcd (here the tests' own)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()

	replica1 := idseq.New(cli, "/example/idseq/vpc", ids.Vpc)
	replica2 := idseq.New(cli, "/example/idseq/vpc", ids.Vpc)
	a, err1 := replica1.Next(ctx)
	b, err2 := replica2.Next(ctx)
	c, err3 := replica1.Next(ctx)
	fmt.Println(err1, err2, err3)
	fmt.Println(ids.Valid(ids.Vpc, a), ids.Valid(ids.Vpc, b), ids.Valid(ids.Vpc, c))
	fmt.Println(a != b && b != c && a != c)
	// Output:
	// <nil> <nil> <nil>
	// true true true
	// true
}
