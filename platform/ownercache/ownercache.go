// Package ownercache mirrors every HAVIP's owner record, one copy per process for all the services that read them.
package ownercache

import (
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/kvcache"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/service"
)

// Cache mirrors every owner record. Each service that reads it adds its hooks (AddHook) and
// starts it (Start): the first start loads it.
type Cache = kvcache.Cache[records.Owner]

// New returns a cache of the owner records on cli, its loads split by HAVIP ID.
func New(cli *clientv3.Client, log *slog.Logger) *Cache {
	return kvcache.New(cli, kvcache.NewRevisions(cli), records.Owners, kvcache.DecodeJSON[records.Owner], log).Split(ids.Splits(records.Owners, ids.HaVip)...)
}

// Of is the owner cache of the process deps belong to: the modules that read owners (havipd,
// the ARP broker and eipd in the suite) share it (service.SharedValue).
func Of(deps service.Deps) *Cache {
	return service.SharedValue(deps.Shared, "ownercache", func() *Cache { return New(deps.Etcd, deps.Log) })
}
