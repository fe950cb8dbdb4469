package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is an etcd cluster of several embedded members on loopback, for tests of what a quorum
// loss does: members stop and restart one by one, on their own data directories and ports.
type Cluster struct {
	tb      testing.TB
	mu      sync.Mutex
	members []*member
	// Endpoints are the members' client URLs, in order.
	Endpoints []string
}

type member struct {
	name, dir    string
	client, peer url.URL
	e            *embed.Etcd
	initial      string
}

// StartCluster starts an n-member cluster (no fsync) and waits until every member is ready;
// every member stops when the test ends. Each member's ports are picked free on 127.0.0.1
// (listened on, then released for etcd to take: etcd's peers must know each other's
// addresses before any starts, and a restarted member comes back on its own).
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	var initial []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(tb.TempDir(), "etcd"), client: freeURL(tb), peer: freeURL(tb)}
		c.members = append(c.members, m)
		c.Endpoints = append(c.Endpoints, m.client.String())
		initial = append(initial, m.name+"="+m.peer.String())
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	tb.Cleanup(func() { c.Stop(c.all()...) })
	for i := range c.members {
		c.start(i)
	}
	for i := range c.members {
		c.waitReady(i)
	}
	return c
}

// all are the indexes of every member.
func (c *Cluster) all() []int {
	is := make([]int, len(c.members))
	for i := range is {
		is[i] = i
	}
	return is
}

// freeURL returns http://127.0.0.1:<a port free now>.
func freeURL(tb testing.TB) url.URL {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = lis.Close() }()
	return url.URL{Scheme: "http", Host: lis.Addr().String()}
}

// start starts member i (a restart when its data directory holds its state).
func (c *Cluster) start(i int) {
	c.tb.Helper()
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = m.name, m.dir
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.client}, []url.URL{m.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{m.peer}, []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = "etcdtest-cluster"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		c.tb.Fatalf("start etcd member %s: %v", m.name, err)
	}
	c.mu.Lock()
	m.e = e
	c.mu.Unlock()
}

// waitReady waits until member i has joined the cluster (which needs a quorum).
func (c *Cluster) waitReady(i int) {
	c.tb.Helper()
	m := c.members[i]
	select {
	case <-m.e.Server.ReadyNotify():
	case err := <-m.e.Err():
		c.tb.Fatalf("etcd member %s failed: %v", m.name, err)
	case <-time.After(60 * time.Second):
		c.tb.Fatalf("etcd member %s not ready after 60s", m.name)
	}
}

// Stop stops the members in is, together (a no-op for those stopped). A member stops
// gracefully: it waits for its clients' streams (watches) to end, for at most etcd's request
// timeout (7 s).
func (c *Cluster) Stop(is ...int) {
	var wg sync.WaitGroup
	for _, i := range is {
		c.mu.Lock()
		e := c.members[i].e
		c.members[i].e = nil
		c.mu.Unlock()
		if e != nil {
			wg.Go(e.Close)
		}
	}
	wg.Wait()
}

// Restart starts the stopped members in is, on their data and ports, and waits until each is
// ready again.
func (c *Cluster) Restart(is ...int) {
	c.tb.Helper()
	for _, i := range is {
		c.start(i)
	}
	for _, i := range is {
		c.waitReady(i)
	}
}

// HasLeader reports whether member i runs and knows a leader of the cluster.
func (c *Cluster) HasLeader(i int) bool {
	c.mu.Lock()
	e := c.members[i].e
	c.mu.Unlock()
	return e != nil && e.Server.Leader() != 0
}

// Leader returns the index of the member that leads, or -1 when no running member does.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.e != nil && m.e.Server.Leader() == m.e.Server.MemberID() {
			return i
		}
	}
	return -1
}
