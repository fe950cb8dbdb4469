// Command etcd is etcd's own server, built from the etcd module this project pins, for the docker-compose stack.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
