package scale_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/mtls"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/proctest"
	"github.com/openhavip/havip/platform/records"
	"github.com/openhavip/havip/platform/tenant"
)

// startEtcd runs etcd as a process of its own (built from the release deploy/etcd pins, with
// etcd's defaults: fsync on) on free loopback ports, killed when the benchmark ends.
func startEtcd(b *testing.B) *proctest.Proc {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "etcd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir, cmd.Env = "../../deploy/etcd", append(os.Environ(), "GOWORK=off") // a module outside the workspace
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build etcd: %v\n%s", err, out)
	}
	const any = "http://127.0.0.1:0"
	return proctest.StartArgs(b, bin, []string{
		"--data-dir", filepath.Join(b.TempDir(), "etcd"), "--enable-grpc-gateway=false", "--enable-pprof=" + strconv.FormatBool(*cpuProfiles != ""),
		"--listen-client-urls", any, "--advertise-client-urls", any,
		"--listen-peer-urls", any, "--initial-advertise-peer-urls", any, "--initial-cluster", "default=" + any,
	}, "serving client traffic insecurely; this is strongly discouraged!")
}

var cpuProfiles = flag.String("cpu.profiles", "", "after the measured rounds, profile etcd, ipamd and havipd, then etcd and the suite, each for 10 s of creates into this directory (NAME.pprof; NAME.allocs.pprof: allocations since the start)")

// profile writes a 10-second CPU profile of each named process (name → the address serving its
// /debug/pprof/) into dir, while work runs at 50 clients until the profiles are done, and then
// each one's allocations since it started.
func profile(b *testing.B, dir string, addrs map[string]string, work func(int) error) {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	fetch := func(name, url string) {
		resp, err := http.Get(url)
		if err == nil {
			var data []byte
			data, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", resp.Status, data)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name+".pprof"), data, 0o644)
			}
		}
		if err != nil {
			b.Errorf("profile %s: %v", name, err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var profiles sync.WaitGroup
	for name, addr := range addrs {
		profiles.Go(func() { fetch(name, "http://"+addr+"/debug/pprof/profile?seconds=10") })
	}
	var workers sync.WaitGroup
	for range 50 {
		workers.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := work(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	profiles.Wait()
	stop()
	workers.Wait()
	for name, addr := range addrs {
		fetch(name+".allocs", "http://"+addr+"/debug/pprof/allocs")
	}
	b.Logf("profiles in %s (NAME.pprof, NAME.allocs.pprof): go tool pprof -top %s", dir, filepath.Join(dir, "NAME.pprof"))
}

// cpuTicks is the CPU time a process has used, user and system, in clock ticks (USER_HZ: 100 a
// second on Linux).
func cpuTicks(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return utime + stime
}

// BenchmarkCreateCPU measures what a CreateHaVip costs the servers in CPU against what etcd
// spends on a raw write, with the same client (this benchmark) on both sides: etcd, ipamd and
// havipd run as processes (etcd with fsync on, the services over mTLS). Rounds of raw
// single-key create-if-absent transactions, of the same write as a create (sameWrite: its two
// records and comparisons, sent by this benchmark straight to etcd) and of CreateHaVips with an
// automatic VIP, each at 50 clients, take turns; the CPU each process used during each side's
// rounds is read from /proc. It reports (etcd + ipamd + havipd CPU per create) ÷ (etcd CPU per
// same write), target ≤ 2, and creates per second against raw transactions per second, target
// ≥ 0.6; and, without a target, the CPU against a raw transaction's and the creates against the
// same writes per second.
// Then it measures the same with the one-process suite (havip-suite: every service, the
// gateway included, in one process on the same etcd) in place of ipamd and havipd.
// With -cpu.profiles DIR, it profiles the three processes during 10 s of creates before the
// suite's rounds, and etcd and the suite after them (each profile's creates in a subnet of
// their own).
//
//	make bench-cpu
//	make bench-cpu CPU_PROFILES=build/cpu
func BenchmarkCreateCPU(b *testing.B) {
	etcd := startEtcd(b)
	c := &cluster{tb: b, endpoint: etcd.Addr, cli: etcdtest.Client(b, etcd.Addr)}
	ipamd := c.service("ipamd", "../../services/ipam/cmd/ipamd")
	havipd := c.service("havipd", "../../services/havip/cmd/havipd")
	if *cpuProfiles != "" {
		ipamd.env = append(ipamd.env, "HAVIP_PPROF=true")
		havipd.env = append(havipd.env, "HAVIP_PPROF=true")
	}
	havipd.ipam = ipamd
	c.start(ipamd)
	c.start(havipd)
	ipamc := ipamv1.NewIpamServiceClient(etcdtest.DialAs(b, ipamd.proc.Addr, mtlstest.Operator))
	havipc := havipv1.NewHaVipServiceClient(etcdtest.DialAs(b, havipd.proc.Addr, mtlstest.Operator))
	ctx := tenant.Outgoing(context.Background(), "acct-cpu")
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](b)(ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/12"})).GetVpc().GetVpcId()
	// A /16 of its own per run, 10.0/16 to 10.12/16: 65,534 addresses for the run's creates;
	// the daemons' profile has 10.13/16, the suite's rounds 10.14/16 and its profile 10.15/16.
	if b.N > 13 {
		b.Fatalf("%d runs: at most 13, a /16 of the VPC's each", b.N)
	}
	// createIn makes a subnet with the block cidr, and returns creates into it and one HAVIP
	// created there.
	createIn := func(ipamc ipamv1.IpamServiceClient, havipc havipv1.HaVipServiceClient, cidr string) (func(int) error, *havipv1.HaVip) {
		subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](b)(ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{
			VpcId: vpc, SubnetName: "s", CidrBlock: cidr})).GetSubnet().GetSubnetId()
		req := &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "cpu"}
		return func(int) error {
			_, err := havipc.CreateHaVip(ctx, req)
			return err
		}, etcdtest.Must[*havipv1.CreateHaVipResponse](b)(havipc.CreateHaVip(ctx, req)).GetHavip()
	}
	for n := range b.N {
		create, sample := createIn(ipamc, havipc, fmt.Sprintf("10.%d.0.0/16", n))
		measureCreateCPU(b, c, "", create, sample, map[string]int{
			"etcd": etcd.Cmd.Process.Pid, "ipamd": ipamd.proc.Cmd.Process.Pid, "havipd": havipd.proc.Cmd.Process.Pid})
	}
	if *cpuProfiles != "" {
		create, _ := createIn(ipamc, havipc, "10.13.0.0/16")
		profile(b, *cpuProfiles, map[string]string{"etcd": etcd.Addr, "ipamd": ipamd.proc.MetricsAddr, "havipd": havipd.proc.MetricsAddr}, create)
	}
	// The suite, alone on etcd: the daemons stop (their watches would follow its writes).
	c.stop(havipd)
	c.stop(ipamd)
	data := b.TempDir()
	suite := &daemon{name: "havip-suite", bin: proctest.Build(b, "../../suite/cmd/havip-suite"), env: []string{"HAVIP_DATA_DIR=" + data, "HAVIP_HTTP_ADDR=127.0.0.1:0"}}
	if *cpuProfiles != "" {
		suite.env = append(suite.env, "HAVIP_PPROF=true")
	}
	c.start(suite)
	op, err := mtls.Load(mtls.InDir(filepath.Join(data, "certs"), "operator"), etcdtest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := grpc.NewClient(suite.proc.Addr, mtls.DialOption(op))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	suiteIpam, suiteHavip := ipamv1.NewIpamServiceClient(conn), havipv1.NewHaVipServiceClient(conn)
	create, sample := createIn(suiteIpam, suiteHavip, "10.14.0.0/16")
	measureCreateCPU(b, c, "suite-", create, sample, map[string]int{"etcd": etcd.Cmd.Process.Pid, "suite": suite.proc.Cmd.Process.Pid})
	if *cpuProfiles != "" {
		create, _ := createIn(suiteIpam, suiteHavip, "10.15.0.0/16")
		profile(b, *cpuProfiles, map[string]string{"suite-etcd": etcd.Addr, "suite": suite.proc.MetricsAddr}, create)
	}
}

// sameWrite is the raw etcd form of the write CreateHaVip made for sample: op i writes, in one
// transaction, the values etcd holds for sample's HAVIP and its address, at two keys of its own
// under prefix, if the create's comparisons hold (both keys absent, the subnet's create revision
// unchanged), as the create's transaction does. The HAVIP's key ends in a fresh random HAVIP
// ID, as a create's does (keys in sequence, which land beside each other in etcd's index, cost
// etcd 7–9% less CPU); the address's ends in i (a subnet's proposals come in order). Each op is
// a transaction of its own, as a client's write is; the service group-commits concurrent
// creates (txnbatch), which spreads etcd's cost per transaction over several creates.
func sameWrite(tb testing.TB, cli *clientv3.Client, sample *havipv1.HaVip, prefix string) func(int) error {
	subnetKey := records.SubnetKey(sample.GetSubnetId())
	get := func(key string) *mvccpb.KeyValue {
		resp, err := cli.Get(context.Background(), key)
		if err != nil {
			tb.Fatalf("get %s: %v", key, err)
		}
		if len(resp.Kvs) != 1 {
			tb.Fatalf("get %s: %d keys", key, len(resp.Kvs))
		}
		return resp.Kvs[0]
	}
	havip := string(get(records.HaVipKey(sample.GetHavipId())).Value)
	addr := string(get(records.AddressKey(sample.GetSubnetId(), netip.MustParseAddr(sample.GetVip()))).Value)
	subnetRev := get(subnetKey).CreateRevision
	return func(i int) error {
		n := strconv.Itoa(i)
		havipKey, addrKey := prefix+"havip/"+ids.New(ids.HaVip), prefix+"address/"+n
		resp, err := cli.Txn(context.Background()).If(
			clientv3.Compare(clientv3.ModRevision(addrKey), "=", 0),
			clientv3.Compare(clientv3.Version(havipKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(subnetKey), "=", subnetRev),
		).Then(clientv3.OpPut(addrKey, addr), clientv3.OpPut(havipKey, havip)).Commit()
		if err == nil && !resp.Succeeded {
			err = fmt.Errorf("raw create of %s: a comparison failed", havipKey)
		}
		return err
	}
}

// measureCreateCPU runs rounds of raw transactions, of the same write as the creates (sameWrite
// of sample, a HAVIP create made) and of creates in turn, at 50 clients, and reports (with the
// prefix) the CPU per create of each server (name → pid; "etcd" among them), their sum against
// etcd's CPU per same write (target ≤ 2) and per raw single-key transaction, and creates per
// second against raw transactions per second (target ≥ 0.6) and same writes per second.
func measureCreateCPU(b *testing.B, c *cluster, prefix string, create func(int) error, sample *havipv1.HaVip, servers map[string]int) {
	nonce := fmt.Sprintf("/bench/cpu/%d/", time.Now().UnixNano())
	raw, same := loadtest.CreateIfAbsent(c.cli, nonce+"raw/"), sameWrite(b, c.cli, sample, nonce+"same/")
	const clients, rounds, perRound = 50, 4, 2500
	// A first round of each, not counted, warms up connections, caches and the collectors.
	loadtest.Throughput(b, clients, 500, func(i int) error { return raw(rounds*perRound + i) })
	loadtest.Throughput(b, clients, 500, func(i int) error { return same(rounds*perRound + i) })
	loadtest.Throughput(b, clients, 500, create)
	// etcdRound runs perRound ops of op at 50 clients and adds the time and etcd's CPU they took.
	etcdRound := func(op func(int) error, ticks *int64, took *float64) {
		t0 := cpuTicks(b, servers["etcd"])
		*took += perRound / loadtest.Throughput(b, clients, perRound, op)
		*ticks += cpuTicks(b, servers["etcd"]) - t0
	}
	var rawTicks, sameTicks int64
	createTicks := map[string]int64{}
	var rawTime, sameTime, createTime float64
	for r := range rounds {
		etcdRound(func(i int) error { return raw(r*perRound + i) }, &rawTicks, &rawTime)
		etcdRound(func(i int) error { return same(r*perRound + i) }, &sameTicks, &sameTime)
		before := map[string]int64{}
		for name, pid := range servers {
			before[name] = cpuTicks(b, pid)
		}
		createTime += perRound / loadtest.Throughput(b, clients, perRound, create)
		for name, pid := range servers {
			createTicks[name] += cpuTicks(b, pid) - before[name]
		}
	}
	const tick = float64(time.Second/100) / float64(time.Microsecond) // µs per USER_HZ tick
	perOp := func(ticks int64) float64 { return float64(ticks) * tick / (rounds * perRound) }
	var createPerOp float64
	for name := range servers {
		createPerOp += perOp(createTicks[name])
		b.ReportMetric(perOp(createTicks[name]), prefix+"create-"+name+"-cpu-µs/op")
	}
	b.ReportMetric(perOp(rawTicks), prefix+"raw-txn-etcd-cpu-µs/op")
	b.ReportMetric(perOp(sameTicks), prefix+"same-write-etcd-cpu-µs/op")
	b.ReportMetric(createPerOp, prefix+"create-servers-cpu-µs/op")
	b.ReportMetric(createPerOp/perOp(sameTicks), prefix+"create-cpu/same-write-cpu(target<=2)")
	b.ReportMetric(createPerOp/perOp(rawTicks), prefix+"create-cpu/raw-txn-cpu")
	b.ReportMetric(rawTime/createTime, prefix+"create/raw(target>=0.6)")
	b.ReportMetric(sameTime/createTime, prefix+"create/same-write")
}
