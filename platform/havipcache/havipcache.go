// Package havipcache mirrors every HAVIP in a compact form, one copy per process for all the services that read them.
package havipcache

import (
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/service"
)

// Item is a cached HAVIP.
type Item = kvcache.Item[Record]

// Cache mirrors every HAVIP. Each service that reads it adds its hooks (AddHook) and starts it
// (Start): the first start loads it.
type Cache = kvcache.Cache[Record]

// New returns a cache of the HAVIPs on cli, its loads split by HAVIP ID.
func New(cli *clientv3.Client, log *slog.Logger) *Cache {
	return kvcache.New(cli, kvcache.NewRevisions(cli), records.HaVips, Decode, log).Split(ids.Splits(records.HaVips, ids.HaVip)...)
}

// Of is the HAVIP cache of the process deps belong to: the modules that read HAVIPs (havipd and
// the ARP broker in the suite) share it (service.SharedValue).
func Of(deps service.Deps) *Cache {
	return service.SharedValue(deps.Shared, "havipcache", func() *Cache { return New(deps.Etcd, deps.Log) })
}
