package kvcache_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/kvcache"
)

// hookCheck is a cache hook that checks the hooks are told a consistent story: for each key,
// prev is what the previous call for that key gave as cur (nil before the first and after a
// delete), and revisions never go back once the first load is over (it tells items in creation
// order, each at its ModRevision, as Hook says). What it saw, applied in order, is the cache's
// contents.
type hookCheck struct {
	tb      testing.TB
	mu      sync.Mutex
	last    map[string]kvcache.Item[string]
	rev     int64
	loaded  bool                     // the first load is over: revisions must rise
	waiting map[string]chan struct{} // closed when a key appears
}

func newHookCheck(tb testing.TB) *hookCheck {
	return &hookCheck{tb: tb, last: map[string]kvcache.Item[string]{}, waiting: map[string]chan struct{}{}}
}

func (h *hookCheck) hook(prev, cur *kvcache.Item[string], rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := ""
	if cur != nil {
		key = cur.Key
	} else if prev != nil {
		key = prev.Key
	}
	if rev < h.rev && h.loaded {
		h.tb.Errorf("%s: revision %d after %d", key, rev, h.rev)
	}
	h.rev = max(h.rev, rev)
	last, had := h.last[key]
	switch {
	case prev == nil && had:
		h.tb.Errorf("%s: told as created, but the hooks had it as %+v", key, last)
	case prev != nil && !had:
		h.tb.Errorf("%s: prev %+v, but the hooks did not have it", key, *prev)
	case prev != nil && *prev != last:
		h.tb.Errorf("%s: prev %+v, but the hooks had %+v", key, *prev, last)
	}
	if cur == nil {
		delete(h.last, key)
		return
	}
	if cur.ModRevision != rev {
		h.tb.Errorf("%s: revision %d for a put at %d", key, rev, cur.ModRevision)
	}
	h.last[key] = *cur
	if ch, ok := h.waiting[key]; ok {
		close(ch)
		delete(h.waiting, key)
	}
}

// firstLoadDone says the first load is over: from now on revisions must not go back.
func (h *hookCheck) firstLoadDone() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loaded = true
}

// await returns a channel closed once the hooks see key.
func (h *hookCheck) await(key string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	if _, ok := h.last[key]; ok {
		close(ch)
	} else {
		h.waiting[key] = ch
	}
	return ch
}

// exact fails tb unless the cache and what its hooks were told are both etcd's contents of
// prefix at rev, revisions included.
func exact(tb testing.TB, cli *clientv3.Client, c *kvcache.Cache[string], h *hookCheck, prefix string, rev int64) {
	tb.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		tb.Fatal(err)
	}
	want := map[string]kvcache.Item[string]{}
	for _, kv := range resp.Kvs {
		want[string(kv.Key)] = kvcache.Item[string]{Key: string(kv.Key), Value: string(kv.Value), CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	}
	got := map[string]kvcache.Item[string]{}
	c.View(func(items map[string]*kvcache.Item[string]) {
		for k, it := range items {
			got[k] = *it
		}
	})
	h.mu.Lock()
	hooked := fmt.Sprint(h.last)
	h.mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("at revision %d the cache has %d keys, etcd %d:\ncache %v\netcd  %v", rev, len(got), len(want), got, want)
	}
	if hooked != fmt.Sprint(want) {
		tb.Fatalf("at revision %d the hooks were told\n%v\netcd has\n%v", rev, hooked, want)
	}
}

// proxy forwards TCP connections to target until cut, which closes them and refuses new ones
// until healed: a network partition between a client and etcd.
type proxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

// behindProxy is a fresh etcd, reached directly (direct) and through a proxy p (cli), and a
// context for what follows it through cli: it ends, then cli closes, when the test ends.
func behindProxy(t *testing.T) (ctx context.Context, p *proxy, cli, direct *clientv3.Client) {
	t.Helper()
	endpoint, direct := etcdtest.Fresh(t)
	p = startProxy(t, strings.TrimPrefix(endpoint, "http://"))
	ctx, cancel := context.WithCancel(context.Background())
	cli, err := etcdx.Connect(ctx, []string{"http://" + p.lis.Addr().String()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel() // what follows etcd stops before its client closes
		_ = cli.Close()
	})
	return ctx, p, cli, direct
}

func startProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	tb.Cleanup(func() {
		_ = lis.Close()
		p.setCut(true)
	})
	return p
}

func (p *proxy) serve() {
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = in.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// countingHandler counts the log records whose message is msg.
type countingHandler struct {
	slog.Handler
	msg string
	mu  sync.Mutex
	n   int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
	}
	return nil
}

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// TestCacheReloadsWhenItsWatchIsCompacted: a cache cut off from etcd (a partition of its
// client) while keys are created, changed and deleted and etcd compacts past the cache's
// revision cannot resume its watch (ErrCompacted): it reloads, and ends with etcd's exact
// contents, its hooks told of every difference with the prev they last saw. Three rounds.
func TestCacheReloadsWhenItsWatchIsCompacted(t *testing.T) {
	ctx, p, cli, direct := behindProxy(t)

	const prefix = "/cc/"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100 {
		if _, err := direct.Put(ctx, fmt.Sprintf("%sk%03d", prefix, i), "v0"); err != nil {
			t.Fatal(err)
		}
	}
	h := newHookCheck(t)
	logs := &countingHandler{Handler: slog.DiscardHandler, msg: "watch compacted; reloading"}
	defer kvcache.SetPageSize(7)() // the reloads read in many pages
	c := kvcache.New(cli, kvcache.NewRevisions(cli), prefix, func(_ string, v []byte) (string, error) { return string(v), nil }, slog.New(logs), h.hook)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.firstLoadDone()
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	exact(t, direct, c, h, prefix, c.Revision())

	for round := 1; round <= 3; round++ {
		p.setCut(true)
		for i := range 100 {
			key := fmt.Sprintf("%sk%03d", prefix, i)
			var err error
			switch rng.IntN(4) {
			case 0:
				_, err = direct.Delete(ctx, key)
			case 1:
				_, err = direct.Put(ctx, key, fmt.Sprintf("v%d", round))
			case 2: // changed twice: the cache sees only the last
				if _, err = direct.Put(ctx, key, "between"); err == nil {
					_, err = direct.Put(ctx, key, fmt.Sprintf("w%d", round))
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		// Created and deleted while cut off: the hooks never hear of it.
		if _, err := direct.Put(ctx, prefix+"transient", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Delete(ctx, prefix+"transient"); err != nil {
			t.Fatal(err)
		}
		marker := fmt.Sprintf("%smarker%d", prefix, round)
		last, err := direct.Put(ctx, marker, "m")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Compact(ctx, last.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		seen := h.await(marker)
		p.setCut(false)
		// Wait for the watch itself: Sync could read the prefix afresh when the watch lags.
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the cache never saw %s", round, marker)
		}
		if n := logs.count(); n != round {
			t.Fatalf("round %d: %d reloads after a compacted watch, want %d", round, n, round)
		}
		exact(t, direct, c, h, prefix, last.Header.Revision)
		// And it follows again from there.
		if _, err := direct.Put(ctx, prefix+"k000", fmt.Sprintf("after%d", round)); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		exact(t, direct, c, h, prefix, c.Revision())
	}
}

// TestLoadIsOneRevision: a load reads the prefix in pages, all at one revision, while writes go
// on: the cache ends up with etcd's exact contents at the revision it reports, and its hooks
// are told the differences with what they saw before.
func TestLoadIsOneRevision(t *testing.T) {
	_, cli := etcdtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const prefix = "/pl/"
	for i := range 300 {
		if _, err := cli.Put(ctx, fmt.Sprintf("%s%03d", prefix, i), "0"); err != nil {
			t.Fatal(err)
		}
	}
	// A key right past the prefix's range end must not be read.
	if _, err := cli.Put(ctx, "/pl0", "outside"); err != nil {
		t.Fatal(err)
	}
	defer kvcache.SetPageSize(16)()
	h := newHookCheck(t)
	c := kvcache.New(cli, kvcache.NewRevisions(cli), prefix, func(_ string, v []byte) (string, error) { return string(v), nil }, etcdtest.Quiet, h.hook)

	writing, done := make(chan struct{}), make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(3, 4))
		var err error
		for n := 0; err == nil; n++ {
			select {
			case <-writing:
				done <- nil
				return
			default:
			}
			key := fmt.Sprintf("%s%03d", prefix, rng.IntN(400))
			if rng.IntN(3) == 0 {
				_, err = cli.Delete(ctx, key)
			} else {
				_, err = cli.Put(ctx, key, fmt.Sprint(n))
			}
		}
		done <- err
	}()
	for range 10 {
		rev, err := c.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h.firstLoadDone()
		exact(t, cli, c, h, prefix, rev)
	}
	close(writing)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestWatchOnly: a watch-only cache reads nothing and holds nothing; its hooks hear of the
// changes after its start (a delete with its key and revision); cut off from etcd, it resumes
// and hears what it missed, without a reset; cut off while etcd compacts past it, it cannot
// resume its watch and tells reset the revision it follows again from, past the changes it
// lost (never told); then it follows again from there.
func TestWatchOnly(t *testing.T) {
	ctx, p, cli, direct := behindProxy(t)
	var err error
	const prefix = "/wo/"
	if _, err := direct.Put(ctx, prefix+"before", "x"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []string
	var resets []int64
	seen := make(chan struct{}, 1)
	hook := func(prev, cur *kvcache.Item[string], rev int64) {
		mu.Lock()
		defer mu.Unlock()
		if cur == nil {
			heard = append(heard, fmt.Sprintf("delete %s@%d", prev.Key, prev.ModRevision))
		} else {
			heard = append(heard, fmt.Sprintf("put %s=%s@%d", cur.Key, cur.Value, rev))
		}
		select { // a wake-up for awaitHeard, which looks at heard first: one pending is enough
		case seen <- struct{}{}:
		default:
		}
	}
	wasReset := make(chan struct{}, 10)
	reset := func(rev int64) {
		mu.Lock()
		defer mu.Unlock()
		resets = append(resets, rev)
		wasReset <- struct{}{}
	}
	c := kvcache.New(cli, kvcache.NewRevisions(cli), prefix, func(_ string, v []byte) (string, error) { return string(v), nil }, etcdtest.Quiet, hook).WatchOnly(reset)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	put, err := direct.Put(ctx, prefix+"a", "1")
	if err != nil {
		t.Fatal(err)
	}
	del, err := direct.Delete(ctx, prefix+"before")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("put %sa=1@%d", prefix, put.Header.Revision),
		fmt.Sprintf("delete %sbefore@%d", prefix, del.Header.Revision),
	}
	mu.Lock()
	if !slices.Equal(heard, want) || c.Len() != 0 {
		t.Errorf("heard %q holding %d keys, want %q holding none", heard, c.Len(), want)
	}
	heard = nil
	mu.Unlock()

	// Cut off without a compaction: it resumes where it was, and hears what it missed.
	p.setCut(true)
	missed, err := direct.Put(ctx, prefix+"missed", "m")
	if err != nil {
		t.Fatal(err)
	}
	p.setCut(false)
	awaitHeard := func(what string) {
		t.Helper()
		for {
			mu.Lock()
			done := slices.Contains(heard, what)
			mu.Unlock()
			if done {
				return
			}
			select {
			case <-seen:
			case <-time.After(30 * time.Second):
				t.Fatalf("the cache never heard %q", what)
			}
		}
	}
	awaitHeard(fmt.Sprintf("put %smissed=m@%d", prefix, missed.Header.Revision))
	mu.Lock()
	if len(resets) != 0 {
		t.Errorf("resets at %v after a cut without a compaction, want none", resets)
	}
	heard = nil
	mu.Unlock()

	// Cut off while etcd compacts past it: it resets, and follows from there.
	p.setCut(true)
	var lost *clientv3.PutResponse
	for _, k := range []string{"lost1", "lost2"} { // compacted past the first
		if lost, err = direct.Put(ctx, prefix+k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := direct.Compact(ctx, lost.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	p.setCut(false)
	select {
	case <-wasReset:
	case <-time.After(30 * time.Second):
		t.Fatal("the cache was never reset after its watch was compacted")
	}
	after, err := direct.Put(ctx, prefix+"after", "2")
	if err != nil {
		t.Fatal(err)
	}
	awaitHeard(fmt.Sprintf("put %safter=2@%d", prefix, after.Header.Revision))
	mu.Lock()
	defer mu.Unlock()
	if len(resets) != 1 || resets[0] < lost.Header.Revision {
		t.Errorf("resets at %v, want one at or past the lost change's revision %d", resets, lost.Header.Revision)
	}
	if want := []string{fmt.Sprintf("put %safter=2@%d", prefix, after.Header.Revision)}; !slices.Equal(heard, want) {
		t.Errorf("heard %q after the cut, want only %q: the lost changes are the reset's", heard, want)
	}
}
