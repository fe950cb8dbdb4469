package kvcache

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Mirror is anything that follows etcd and can say when it has caught up: a Cache, or a
// structure built on one.
type Mirror interface {
	Start(ctx context.Context) error
	WaitRevision(ctx context.Context, rev int64) error
}

// Group is the set of mirrors a service reads together: one start, one sync for all.
type Group struct {
	rev     *Revisions
	members []Mirror
}

// NewGroup returns an empty group on cli.
func NewGroup(cli *clientv3.Client) *Group { return &Group{rev: NewRevisions(cli)} }

// Revisions is the revision fetcher the group's caches share.
func (g *Group) Revisions() *Revisions { return g.rev }

// Add puts mirrors in the group; call before Start.
func (g *Group) Add(m ...Mirror) { g.members = append(g.members, m...) }

// Start loads every mirror and keeps them following etcd until ctx ends.
func (g *Group) Start(ctx context.Context) error {
	for _, m := range g.members {
		if err := m.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Sync waits until every mirror holds every write committed before the call, so reads from
// them are as fresh as linearizable reads. Concurrent calls share one etcd round trip.
func (g *Group) Sync(ctx context.Context) error {
	rev, err := g.rev.Current(ctx)
	if err != nil {
		return fmt.Errorf("read revision: %w", err)
	}
	for _, m := range g.members {
		if err := m.WaitRevision(ctx, rev); err != nil {
			return err
		}
	}
	return nil
}

// DecodeJSON is a decode function for caches of JSON records.
func DecodeJSON[T any](_ string, val []byte) (T, error) {
	var v T
	err := json.Unmarshal(val, &v)
	return v, err
}

// EncodeJSON is the stored form of a record a cache decodes with DecodeJSON.
func EncodeJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // records are plain structs
	}
	return string(b)
}
