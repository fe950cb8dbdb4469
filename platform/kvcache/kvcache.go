// Package kvcache mirrors an etcd prefix in memory through a watch, and serves reads as fresh as a linearizable read.
package kvcache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/metadata"

	"github.com/openhavip/havip/platform/metrics"
)

// Item is one cached key with its decoded value and revisions.
type Item[T any] struct {
	Key            string
	Value          T
	CreateRevision int64
	ModRevision    int64
}

// Hook sees every change, under the cache's write lock, after the item map is updated. prev is
// nil for a create, cur is nil for a delete; rev is the revision of the change: cur's
// ModRevision for a create or an update, the delete's revision for a delete (the reload's, for
// a delete found by a reload). Changes come in revision order, but for the first load: before
// Start returns (before anyone can follow what hooks feed), every item is told as a create in
// creation order (CreateRevision, then key), each at its ModRevision. For each key, prev is the
// cur the hooks last saw. A reload (after the watch was compacted, or broke) tells of the
// differences between the old and the new contents only: the intermediate states it skipped
// are not told. A hook added to a loaded cache (AddHook) is first told of every item as on a
// first load. Hooks maintain derived indexes and feed watchers. A WatchOnly cache tells its hooks
// only the changes it watches, with what they carry: prev is nil for a put, and for a delete
// holds only the key and the delete's revision.
type Hook[T any] func(prev, cur *Item[T], rev int64)

// A Loader takes a first load at once, for a hook that builds its indexes faster from all the
// items than one by one: it gets every item, in creation order, in place of a call of its hook
// per item. A loader is called once, before any call of its hook. Loaders run at once, each on a
// goroutine of its own, beside the hooks that have none (still under the cache's write lock): a
// loader touches only what its own hook keeps.
type Loader[T any] func(items []*Item[T])

// hook is a hook and its loader, if it has one.
type hook[T any] struct {
	each Hook[T]
	load Loader[T]
}

// Cache is an in-memory mirror of one etcd prefix.
type Cache[T any] struct {
	cli    *clientv3.Client
	prefix string
	decode func(key string, val []byte) (T, error)
	hooks  []hook[T]
	log    *slog.Logger
	rev    *Revisions

	bounds []string // where a load cuts the prefix (Split); the first is the prefix
	// reset, for a WatchOnly cache, is told the revision from which it follows again after
	// losing changes.
	reset func(rev int64)

	mu      sync.RWMutex
	items   map[string]*Item[T]
	applied int64         // every event up to this revision is applied
	changed chan struct{} // closed and replaced whenever applied advances
	loaded  bool

	watchCtx context.Context
	waitOpts []metric.RecordOption // the prefix, for syncWait

	startOnce sync.Once
	startErr  error
}

// New creates a cache of prefix; decode turns a stored value into T (a value that fails to
// decode is logged and skipped). Caches that are synced together share rev. Call Start before use.
func New[T any](cli *clientv3.Client, rev *Revisions, prefix string, decode func(key string, val []byte) (T, error), log *slog.Logger, hooks ...Hook[T]) *Cache[T] {
	hs := make([]hook[T], len(hooks))
	for i, h := range hooks {
		hs[i].each = h
	}
	return &Cache[T]{
		cli: cli, prefix: prefix, decode: decode, hooks: hs, log: log,
		rev:      rev,
		items:    map[string]*Item[T]{},
		changed:  make(chan struct{}),
		waitOpts: metrics.RecordOptions(attribute.String("prefix", prefix)),
	}
}

// Start loads the prefix (a WatchOnly cache only learns the revision) and keeps following it
// until ctx ends. Services of one process that share a cache each start it: the first call
// loads it, and the others wait for that call and return its result (its error too: a failed
// start is not tried again). The cache follows etcd until the first call's ctx ends, so sharers
// must start it with contexts that end together.
func (c *Cache[T]) Start(ctx context.Context) error {
	c.startOnce.Do(func() { c.startErr = c.start(ctx) })
	return c.startErr
}

// AddHook adds a hook, and its loader when load is not nil, for a service that shares a cache
// another built. Added after the first load, the hook first learns of every item as on a first
// load.
func (c *Cache[T]) AddHook(h Hook[T], load Loader[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	add := hook[T]{h, load}
	c.hooks = append(c.hooks, add)
	if !c.loaded {
		return
	}
	all := slices.Collect(maps.Values(c.items))
	slices.SortFunc(all, func(a, b *Item[T]) int {
		return cmp.Or(cmp.Compare(a.CreateRevision, b.CreateRevision), cmp.Compare(a.Key, b.Key))
	})
	tellAll([]hook[T]{add}, all)
}

// tellAll tells hooks of every item of a first load (all, in creation order): each loader on a
// goroutine of its own, the hooks without one item by item on this one.
func tellAll[T any](hooks []hook[T], all []*Item[T]) {
	var wg sync.WaitGroup
	var each []Hook[T]
	for _, h := range hooks {
		if h.load != nil {
			wg.Go(func() { h.load(all) })
		} else {
			each = append(each, h.each)
		}
	}
	if len(each) > 0 {
		for _, it := range all {
			for _, h := range each {
				h(nil, it, it.ModRevision)
			}
		}
	}
	wg.Wait()
}

func (c *Cache[T]) start(ctx context.Context) error {
	// The watch and its progress requests must share one context: etcd's client picks the
	// watch stream by the context's metadata. Each cache gets a stream of its own, because etcd
	// answers a progress request only when every watcher of the stream is in step: on a shared
	// stream, a busy prefix would hold back the progress a quiet one waits for.
	c.watchCtx = clientv3.WithRequireLeader(metadata.AppendToOutgoingContext(ctx, "havip-watch", c.prefix))
	rev, err := c.load(ctx)
	if err != nil {
		return err
	}
	if c.reset == nil {
		followSize(ctx, c) // a WatchOnly cache holds nothing to count
	}
	go c.follow(ctx, rev)
	return nil
}

// pageSize is the fewest keys one read of a load fetches. A range of a load takes at most about
// loadPages reads: etcd counts every key left in the range at each read (its Range always
// computes the total), so a fixed page would make a load quadratic (a million keys in pages of
// a thousand: half a billion keys visited); in 32 pages it visits each key about 16 times, and
// no response holds more than a thirty-second of the range (not one response of a gigabyte,
// which etcd would build in memory whole). Splits (Split) cut that further: each range is
// counted on its own, and a range of up to pageSize keys is read in one page (a million keys in
// 36 ranges: each read once, where pages of ten thousand visited each about twice).
var pageSize int64 = 32768

// loadPages is about how many reads a load of a large range takes.
const loadPages = 32

// loadWorkers is how many ranges of a split prefix a load reads at once.
const loadWorkers = 4

// Split cuts the prefix at keys, so that a load reads the ranges between them at once, each
// counted by etcd on its own (see pageSize): given keys that cut the prefix into ranges of
// similar size (ids.Splits), a load makes etcd visit each key once or twice instead of about
// sixteen times, and decodes on every core. Call before Start; keys outside the prefix are
// ignored.
func (c *Cache[T]) Split(keys ...string) *Cache[T] {
	end := clientv3.GetPrefixRangeEnd(c.prefix)
	bounds := []string{c.prefix}
	for _, k := range keys {
		if k > c.prefix && k < end {
			bounds = append(bounds, k)
		}
	}
	slices.Sort(bounds)
	c.bounds = slices.Compact(bounds)
	return c
}

// WatchOnly makes the cache hold nothing and read no key: Start only learns the current
// revision, and the hooks follow the changes from there on (see Hook). When changes are lost (a
// compaction past the watch, or a watch too slow for WaitRevision; a broken watch resumes where
// it was), reset is called, under the write lock, with the revision the cache follows again
// from: whatever the hooks derived from the changes is then stale, and must be read again from
// etcd at a revision of at least rev. For a structure that reads what it needs lazily, a piece
// at a time (ipalloc reads a pool when it is first allocated from). Call before Start.
func (c *Cache[T]) WatchOnly(reset func(rev int64)) *Cache[T] {
	if reset == nil {
		panic("kvcache: WatchOnly needs a reset")
	}
	c.reset = reset
	return c
}

// restart is load for a WatchOnly cache: it reads etcd's current revision and, when that is
// past what the cache applied, tells reset that the changes up to it were not followed.
func (c *Cache[T]) restart(ctx context.Context) (int64, error) {
	rev, err := c.rev.Current(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the revision of %s: %w", c.prefix, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && rev <= c.applied {
		return c.applied, nil
	}
	if c.loaded {
		c.reset(rev)
	}
	c.loaded = true
	c.advanceLocked(rev)
	return rev, nil
}

// load replaces the contents with a fresh read of the prefix at one revision, made in pages,
// and returns the revision the cache is then applied up to. A read older than what the cache
// already holds (another load, or the watch, got further meanwhile) is dropped.
func (c *Cache[T]) load(ctx context.Context) (int64, error) {
	if c.reset != nil {
		return c.restart(ctx)
	}
	items, inKeyOrder, rev, err := c.read(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && rev <= c.applied {
		return c.applied, nil
	}
	old := c.items
	c.items = items
	if !c.loaded {
		// The first load: the hooks learn of every item, in creation order (indexes kept in
		// that order then grow by appends, not inserts at random places).
		// The items in key order sorted by revision, then by their place in key order: no item is
		// read to compare two.
		type created struct{ rev, at int64 }
		all := make([]created, len(inKeyOrder))
		for i, it := range inKeyOrder {
			all[i] = created{it.CreateRevision, int64(i)}
		}
		slices.SortFunc(all, func(a, b created) int { return cmp.Or(cmp.Compare(a.rev, b.rev), cmp.Compare(a.at, b.at)) })
		ordered := make([]*Item[T], len(all))
		for i, a := range all {
			ordered[i] = inKeyOrder[a.at]
		}
		tellAll(c.hooks, ordered)
		c.loaded = true
		c.advanceLocked(rev)
		return rev, nil
	}
	// Tell hooks what changed between the old and the new contents, in revision order: the
	// creates and updates at their own revisions (each after the cache's), then the deletes
	// at the read's revision.
	type change struct {
		key       string
		prev, cur *Item[T]
		rev       int64
	}
	var changes []change
	for k, cur := range items {
		prev, ok := old[k]
		if ok && prev.ModRevision == cur.ModRevision {
			items[k] = prev // unchanged: keep the item hooks' indexes point at, not a second copy
			continue
		}
		changes = append(changes, change{k, prev, cur, cur.ModRevision})
	}
	for k, prev := range old {
		if _, ok := items[k]; !ok {
			changes = append(changes, change{k, prev, nil, rev})
		}
	}
	slices.SortFunc(changes, func(a, b change) int {
		if a.rev != b.rev {
			return cmp.Compare(a.rev, b.rev)
		}
		return cmp.Compare(a.key, b.key)
	})
	for _, ch := range changes {
		c.runHooks(ch.prev, ch.cur, ch.rev)
	}
	c.loaded = true
	c.advanceLocked(rev)
	return rev, nil
}

// errCompacted is a load's read whose revision was compacted before it ended.
var errCompacted = errors.New("compacted while loading")

// read reads the prefix at one revision, range by range (see Split), loadWorkers ranges at a
// time; the first range fixes the revision. When that revision is compacted before the last
// page, it starts again. It returns the items by key, and in key order.
func (c *Cache[T]) read(ctx context.Context) (map[string]*Item[T], []*Item[T], int64, error) {
	bounds := c.bounds
	if len(bounds) == 0 {
		bounds = []string{c.prefix}
	}
	ends := append(slices.Clone(bounds[1:]), clientv3.GetPrefixRangeEnd(c.prefix))
	for {
		parts := make([][]*Item[T], len(bounds))
		var rev int64
		var err error
		parts[0], rev, err = c.readRange(ctx, bounds[0], ends[0], 0)
		if err == nil && len(bounds) > 1 {
			err = c.readRanges(ctx, bounds[1:], ends[1:], rev, parts[1:])
		}
		if errors.Is(err, errCompacted) {
			c.log.Info("compacted while loading; loading again", "prefix", c.prefix, "revision", rev)
			continue
		}
		if err != nil {
			return nil, nil, 0, err
		}
		ordered := slices.Concat(parts...)
		items := make(map[string]*Item[T], len(ordered))
		for _, it := range ordered {
			items[it.Key] = it
		}
		return items, ordered, rev, nil
	}
}

// readRanges reads the ranges [from[i], to[i]) at rev into parts[i], loadWorkers at a time.
func (c *Cache[T]) readRanges(ctx context.Context, from, to []string, rev int64, parts [][]*Item[T]) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(from))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(loadWorkers, len(from)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(from); i = int(next.Add(1)) - 1 {
				if parts[i], _, errs[i] = c.readRange(ctx, from[i], to[i], rev); errs[i] != nil {
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // a compaction first: the others may be its cancellation
		if errors.Is(err, errCompacted) {
			return err
		}
	}
	for _, err := range errs { // then the failure that cancelled the others
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// readRange reads [from, end) in pages at rev (at the current revision when rev is 0), and
// returns its items and the revision read.
func (c *Cache[T]) readRange(ctx context.Context, from, end string, rev int64) ([]*Item[T], int64, error) {
	var items []*Item[T]
	rev, err := readPages(ctx, c.cli, from, end, rev, nil, func(n int64) { items = make([]*Item[T], 0, n) }, func(kv *mvccpb.KeyValue) {
		if it, ok := c.decodeKV(kv); ok {
			items = append(items, it)
		}
	})
	if err != nil && !errors.Is(err, errCompacted) {
		err = fmt.Errorf("load %s: %w", c.prefix, err)
	}
	return items, rev, err
}

// readPages reads [from, end) in pages (see pageSize) at rev, at the current revision when rev
// is 0, with opts added to each read; it tells sized the range's size before the first page's
// keys, and each every key in order, and returns the revision read (errCompacted when rev was
// compacted first).
func readPages(ctx context.Context, cli *clientv3.Client, from, end string, rev int64, opts []clientv3.OpOption, sized func(n int64), each func(kv *mvccpb.KeyValue)) (int64, error) {
	limit := pageSize
	for first := true; ; first = false {
		page := append([]clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(limit)}, opts...)
		if rev != 0 {
			page = append(page, clientv3.WithRev(rev))
		}
		resp, err := cli.Get(ctx, from, page...)
		if errors.Is(err, rpctypes.ErrCompacted) {
			return rev, errCompacted
		}
		if err != nil {
			return rev, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		if first {
			limit = max(pageSize, resp.Count/loadPages+1) // resp.Count: the whole range
			sized(resp.Count)
		}
		for _, kv := range resp.Kvs {
			each(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// ReadKeys reads the keys under prefix, without their values, at one revision and in pages as a
// load reads them (a compaction before the last page starts it again), for a reader that needs
// to know only which keys exist. It returns them in key order, and the revision read.
func ReadKeys(ctx context.Context, cli *clientv3.Client, prefix string) ([]string, int64, error) {
	for {
		var keys []string
		rev, err := readPages(ctx, cli, prefix, clientv3.GetPrefixRangeEnd(prefix), 0, []clientv3.OpOption{clientv3.WithKeysOnly()},
			func(n int64) { keys = make([]string, 0, n) },
			func(kv *mvccpb.KeyValue) { keys = append(keys, string(kv.Key)) })
		if errors.Is(err, errCompacted) {
			continue
		}
		return keys, rev, err
	}
}

func (c *Cache[T]) decodeKV(kv *mvccpb.KeyValue) (*Item[T], bool) {
	v, err := c.decode(string(kv.Key), kv.Value)
	if err != nil {
		c.log.Warn("skipping undecodable key", "key", string(kv.Key), "err", err)
		return nil, false
	}
	return &Item[T]{Key: string(kv.Key), Value: v, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}, true
}

func (c *Cache[T]) runHooks(prev, cur *Item[T], rev int64) {
	for _, h := range c.hooks {
		h.each(prev, cur, rev)
	}
}

func (c *Cache[T]) advanceLocked(rev int64) {
	if rev > c.applied {
		c.applied = rev
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// follow applies watch events from rev+1 on, reloading after a compaction or a broken watch (a
// WatchOnly cache resets after a compaction only, and resumes after a broken watch).
func (c *Cache[T]) follow(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		wch := c.cli.Watch(c.watchCtx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
		compacted := false
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if compacted = errors.Is(err, rpctypes.ErrCompacted); compacted {
					c.log.Info("watch compacted; reloading", "prefix", c.prefix, "revision", rev, "compacted", resp.CompactRevision)
				} else {
					c.log.Warn("watch broke; resuming", "prefix", c.prefix, "err", err)
				}
				break
			}
			c.apply(resp)
			rev = resp.Header.Revision
		}
		if ctx.Err() != nil {
			return
		}
		if c.reset != nil && !compacted {
			// A watch-only cache resumes where it was (etcd still has the changes past rev),
			// rather than make its user read everything again.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		// Either compacted past us or the stream broke: reload and resume from the new revision.
		for ctx.Err() == nil {
			r, err := c.load(ctx)
			if err == nil {
				rev = r
				break
			}
			c.log.Warn("reload failed", "prefix", c.prefix, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func (c *Cache[T]) apply(resp clientv3.WatchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range resp.Events {
		if ev.Kv.ModRevision <= c.applied {
			continue // already in a reload that read past it
		}
		if c.reset != nil {
			c.tell(ev)
			continue
		}
		key := string(ev.Kv.Key)
		prev := c.items[key]
		switch ev.Type {
		case clientv3.EventTypeDelete:
			if prev != nil {
				delete(c.items, key)
				c.runHooks(prev, nil, ev.Kv.ModRevision)
			}
		case clientv3.EventTypePut:
			cur, ok := c.decodeKV(ev.Kv)
			if !ok {
				continue
			}
			c.items[key] = cur
			c.runHooks(prev, cur, cur.ModRevision)
		}
	}
	c.advanceLocked(resp.Header.Revision)
}

// tell runs the hooks of a WatchOnly cache on one event.
func (c *Cache[T]) tell(ev *clientv3.Event) {
	if ev.Type == clientv3.EventTypeDelete {
		c.runHooks(&Item[T]{Key: string(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}, nil, ev.Kv.ModRevision)
		return
	}
	if cur, ok := c.decodeKV(ev.Kv); ok {
		c.runHooks(nil, cur, cur.ModRevision)
	}
}

// WaitRevision blocks until every change up to rev is applied. When no event is coming for
// the prefix it asks etcd for a progress notification; if the watch still has not moved after
// a while (etcd answers progress requests only when every watcher of the stream is in step),
// it reads the prefix afresh (half a second), or, for a WatchOnly cache, resets (five seconds:
// its user then reads again whatever it follows).
func (c *Cache[T]) WaitRevision(ctx context.Context, rev int64) error {
	start := time.Now()
	err := c.waitRevision(ctx, rev)
	syncWait.Record(ctx, time.Since(start).Seconds(), c.waitOpts...)
	return err
}

func (c *Cache[T]) waitRevision(ctx context.Context, rev int64) error {
	asked := false
	fallback := 5 // attempts of 100 ms
	if c.reset != nil {
		fallback = 50
	}
	for attempt := 0; ; attempt++ {
		c.mu.RLock()
		applied, ch := c.applied, c.changed
		c.mu.RUnlock()
		if applied >= rev {
			return nil
		}
		if attempt == fallback {
			if _, err := c.load(ctx); err != nil {
				return err
			}
			continue
		}
		if !asked {
			asked = true
			go func() { _ = c.cli.RequestProgress(c.watchCtx) }()
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-t.C:
			asked = false
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// Sync waits until the cache holds every change committed before Sync was called, so the next
// read is as fresh as a linearizable read. Concurrent calls share one etcd round trip.
func (c *Cache[T]) Sync(ctx context.Context) error {
	rev, err := c.rev.Current(ctx)
	if err != nil {
		return err
	}
	return c.WaitRevision(ctx, rev)
}

// Revision is the revision up to which the cache is applied.
func (c *Cache[T]) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.applied
}

// Get returns the item at key, if cached (a WatchOnly cache holds none).
func (c *Cache[T]) Get(key string) (Item[T], bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	it, ok := c.items[key]
	if !ok {
		return Item[T]{}, false
	}
	return *it, true
}

// View calls fn under the read lock with the whole map (empty for a WatchOnly cache); fn must
// not keep or change it.
func (c *Cache[T]) View(fn func(items map[string]*Item[T])) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn(c.items)
}
