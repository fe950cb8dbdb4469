package etcdx_test

import (
	"context"
	"fmt"
	"os"

	"github.com/openhavip/havip/platform/etcdx"
)

// An etcd inside the process (as the one-process suite runs it), a client connected to it, and
// its data still there after a restart on the same directory.
func ExampleStartEmbedded() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "etcdx-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// ClientAddr defaults to 127.0.0.1:0, a free port: e.Endpoint says which.
	e, err := etcdx.StartEmbedded(ctx, etcdx.EmbeddedOptions{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	cli, err := etcdx.Connect(ctx, []string{e.Endpoint}) // fails unless etcd answers
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = cli.Put(ctx, "/example/greeting", "hello")
	cli.Close()
	e.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	e, err = etcdx.StartEmbedded(ctx, etcdx.EmbeddedOptions{Dir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	cli, err = etcdx.Connect(ctx, []string{e.Endpoint})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/example/greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, kv := range resp.Kvs {
		fmt.Printf("after a restart: %s = %s\n", kv.Key, kv.Value)
	}
	// Output:
	// after a restart: /example/greeting = hello
}
