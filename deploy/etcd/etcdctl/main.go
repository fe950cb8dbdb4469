// Command etcdctl is etcd's own client, built from the etcd release this module pins, for operators (defragmentation, alarms).
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
