package arpbroker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"
	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/ids"
	"github.com/openhavip/havip/services/arpbroker"
	"github.com/openhavip/havip/services/arpbroker/agent"
)

// run runs a command and fails the test with its output if it fails.
func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netns creates a network namespace that is deleted when the test ends.
func netns(t testing.TB, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// inNetns runs fn on an OS thread inside the named namespace (sockets it opens stay there).
func inNetns(t testing.TB, name string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is dropped afterwards, never reused in the wrong namespace
		f, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// keepalived runs keepalived inside a namespace; stop kills it with SIGKILL, like a crash.
type keepalived struct {
	cmd  *exec.Cmd
	once sync.Once
}

func startKeepalived(t testing.TB, ns, dir, name, config string) *keepalived {
	t.Helper()
	conf := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "keepalived", "--dont-fork", "--log-console", "--vrrp",
		"-f", conf, "-p", filepath.Join(dir, name+".pid"), "-r", filepath.Join(dir, name+"-vrrp.pid"), "-c", filepath.Join(dir, name+"-check.pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kill the whole group: keepalived forks its VRRP child
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	k := &keepalived{cmd: cmd}
	t.Cleanup(func() {
		k.kill()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return k
}

func (k *keepalived) kill() {
	k.once.Do(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		_ = k.cmd.Wait()
	})
}

// lab is a HAVIP between two "VMs" (network namespaces) on a host bridge, a third VM outside
// its switch range, the keepalived configurations havipd generates, and the host's agent.
type lab struct {
	c       clients
	ctx     context.Context
	hv      *havipv1.HaVip
	configs []*havipv1.KeepalivedConfig
	cvms    []*ipamv1.CreateInstanceResponse
	vms     []string // the VMs' namespaces
	host    string   // the host's namespace, ports p1..p3 on bridge br0
	dir     string
	agent   *agent.Agent
}

func newLab(t testing.TB, cfg arpbroker.Config) *lab {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root for network namespaces")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatal("keepalived is not installed (scripts/install-system-deps.sh)")
	}
	c := suite(t, cfg)
	awaitLeader(t, c, session(t, c, 30)) // a replica of an earlier test may still hold the election for a moment
	account := "acct-keepalived" + ids.New("")
	ctx := as(account)
	vpc := etcdtest.Must[*ipamv1.CreateVpcResponse](t)(c.ipam.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/16"})).GetVpc().GetVpcId()
	subnet := etcdtest.Must[*ipamv1.CreateSubnetResponse](t)(c.ipam.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc, SubnetName: "s", CidrBlock: "10.0.0.0/24"})).GetSubnet().GetSubnetId()
	var cvms []*ipamv1.CreateInstanceResponse
	for i := range 3 {
		cvms = append(cvms, etcdtest.Must[*ipamv1.CreateInstanceResponse](t)(c.ipam.CreateInstance(ctx, &ipamv1.CreateInstanceRequest{InstanceName: fmt.Sprintf("vm%d", i+1), SubnetId: subnet, HostId: "host-e2e"})))
	}
	hv := etcdtest.Must[*havipv1.CreateHaVipResponse](t)(c.havip.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc, SubnetId: subnet, HavipName: "e2e",
		HavipAssociationSet: []*havipv1.HaVipAssociation{
			{InstanceId: cvms[0].GetInstance().GetInstanceId(), InstanceType: "CVM"},
			{InstanceId: cvms[1].GetInstance().GetInstanceId(), InstanceType: "CVM"},
		}})).GetHavip()
	configs := etcdtest.Must[*havipv1.DescribeHaVipKeepalivedConfigResponse](t)(c.havip.DescribeHaVipKeepalivedConfig(ctx, &havipv1.DescribeHaVipKeepalivedConfigRequest{HavipId: hv.GetHavipId(), Interface: "eth0"})).GetConfigSet()

	// The network: a host namespace with a bridge, and a namespace per VM on a veth whose VM
	// end has the ENI's MAC and primary IP.
	tag := ids.New("")[1:7]
	host := "hvh" + tag
	netns(t, host)
	run(t, "ip", "-n", host, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", host, "link", "set", "br0", "up")
	ports := map[string]string{}
	vms := make([]string, 3)
	for i, cvm := range cvms {
		eni := cvm.GetPrimaryNetworkInterface()
		vms[i] = fmt.Sprintf("hv%d%s", i+1, tag)
		port := fmt.Sprintf("p%d", i+1)
		netns(t, vms[i])
		run(t, "ip", "-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vms[i])
		run(t, "ip", "-n", vms[i], "link", "set", "eth0", "address", eni.GetMacAddress())
		run(t, "ip", "-n", vms[i], "addr", "add", eni.GetPrimaryIpAddress()+"/24", "dev", "eth0")
		run(t, "ip", "-n", vms[i], "link", "set", "eth0", "up")
		run(t, "ip", "-n", host, "link", "set", port, "master", "br0")
		run(t, "ip", "-n", host, "link", "set", port, "up")
		ports[port] = eni.GetNetworkInterfaceId()
	}

	// The host's agent, its sockets opened in the host namespace.
	ag := agent.New(agent.Config{AgentID: "agent-e2e", HostID: "host-e2e", Ports: ports, SessionTTL: 10 * time.Second}, c.broker, etcdtest.Quiet)
	inNetns(t, host, ag.Open)
	actx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(actx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	return &lab{c: c, ctx: ctx, hv: hv, configs: configs, cvms: cvms, vms: vms, host: host, dir: t.TempDir(), agent: ag}
}

// TestKeepalivedMovesTheHaVip: two "VMs" (network namespaces) on a host bridge run keepalived
// with the configuration havipd generates; an agent watches the host's ports. The MASTER's ENI
// becomes the owner; when its keepalived is killed the backup's ENI takes over; a third VM
// outside the switch range that announces the VIP with a higher priority is rejected.
func TestKeepalivedMovesTheHaVip(t *testing.T) {
	l := newLab(t, arpbroker.Config{})
	c, ctx, hv, configs, cvms, vms, dir := l.c, l.ctx, l.hv, l.configs, l.cvms, l.vms, l.dir
	// owner waits until one of want owns the HAVIP and returns it.
	owner := func(within time.Duration, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := state(t, c, ctx, hv.GetHavipId())
			if got.GetState() == "BIND" && slices.Contains(want, got.GetNetworkInterfaceId()) {
				return got.GetNetworkInterfaceId()
			}
			if time.Now().After(deadline) {
				t.Fatalf("owner is %q (%s), want one of %v", got.GetNetworkInterfaceId(), got.GetState(), want)
			}
			time.Sleep(50 * time.Millisecond) // polling for keepalived's election
		}
	}
	var kas []*keepalived
	for i, cfg := range configs {
		if cfg.GetInstanceId() != cvms[i].GetInstance().GetInstanceId() {
			t.Fatalf("config %d is for %s", i, cfg.GetInstanceId())
		}
		kas = append(kas, startKeepalived(t, vms[i], dir, fmt.Sprintf("vm%d", i+1), cfg.GetConfig()))
	}
	// The first VM to become MASTER (normally VM1, whose higher priority gives it a 40ms shorter
	// wait; a slow start of VM1 lets VM2 win, and nopreempt keeps it) makes its ENI the owner.
	first := 0
	if owner(20*time.Second, configs[0].GetNetworkInterfaceId(), configs[1].GetNetworkInterfaceId()) == configs[1].GetNetworkInterfaceId() {
		first = 1
	}
	other := 1 - first

	// The MASTER's keepalived dies: the other takes over, and so does its ENI.
	kas[first].kill()
	run(t, "ip", "-n", vms[first], "addr", "flush", "dev", "eth0", "to", hv.GetVip()+"/32") // the VIP a killed keepalived leaves behind
	owner(20*time.Second, configs[other].GetNetworkInterfaceId())
	// The agent applied both owners, in fencing order.
	var applied []*arpbrokerv1.Ownership
	for len(applied) == 0 || applied[len(applied)-1].GetNetworkInterfaceId() != configs[other].GetNetworkInterfaceId() {
		select {
		case o := <-l.agent.Applied():
			if o.GetHavipId() == hv.GetHavipId() {
				applied = append(applied, o)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the agent applied %v, not the takeover", applied)
		}
	}
	for i := 1; i < len(applied); i++ {
		if applied[i].GetRevision() <= applied[i-1].GetRevision() {
			t.Errorf("applied revision %d after %d", applied[i].GetRevision(), applied[i-1].GetRevision())
		}
	}

	// VM3 is outside the switch range; it announces the VIP at a higher priority, alone.
	third := strings.NewReplacer("priority 100", "priority 200", "state BACKUP ", "state MASTER ").Replace(configs[0].GetConfig())
	third = strings.Replace(third, "unicast_src_ip "+cvms[0].GetPrimaryNetworkInterface().GetPrimaryIpAddress(), "unicast_src_ip "+cvms[2].GetPrimaryNetworkInterface().GetPrimaryIpAddress(), 1)
	startKeepalived(t, vms[2], dir, "vm3", third)
	outsider := cvms[2].GetPrimaryNetworkInterface().GetNetworkInterfaceId()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rs := etcdtest.Must[*arpbrokerv1.ListArpRejectionsResponse](t)(c.broker.ListArpRejections(ctx, &arpbrokerv1.ListArpRejectionsRequest{HavipId: hv.GetHavipId()}))
		if len(rs.GetRejectionSet()) > 0 && rs.GetRejectionSet()[0].GetNetworkInterfaceId() == outsider {
			if r := rs.GetRejectionSet()[0].GetReason(); r != "OutsideSwitchRange" {
				t.Fatalf("VM3 rejected for %s", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VM3's announcement was never rejected: %v", rs)
		}
		time.Sleep(50 * time.Millisecond) // polling for VM3's keepalived to announce
	}
	owner(0, configs[other].GetNetworkInterfaceId())
}
