package scale_test

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	havipv1 "github.com/openhavip/havip/proto/havip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/platform/etcdx"
	"github.com/openhavip/havip/platform/loadtest"
	"github.com/openhavip/havip/platform/mtls/mtlstest"
	"github.com/openhavip/havip/platform/tenant"
)

var (
	churnN         = flag.Int("scale.churn", 100000, "HAVIPs each round of BenchmarkChurn creates and deletes")
	churnRounds    = flag.Int("scale.churn-rounds", 3, "rounds of BenchmarkChurn")
	churnRetention = flag.Duration("scale.churn-retention", etcdx.DefaultCompactionRetention, "etcd's auto-compaction retention in BenchmarkChurn (the suite's default)")
)

// BenchmarkChurn creates and deletes the same number of HAVIPs (through ipamd and havipd as
// processes, over mTLS, on an etcd with fsync on and the suite's auto-compaction) several times,
// and prints etcd's database size after each round against its size after the first: with
// compaction, the space later rounds need is the space earlier rounds freed.
//
//	make bench-churn CHURN=100000
func BenchmarkChurn(b *testing.B) {
	c := newCluster(b, etcdx.EmbeddedOptions{CompactionRetention: *churnRetention})
	ipamd := c.service("ipamd", "../../services/ipam/cmd/ipamd")
	c.start(ipamd)
	havipd := c.service("havipd", "../../services/havip/cmd/havipd")
	havipd.ipam = ipamd
	c.start(havipd)
	ipamc := ipamv1.NewIpamServiceClient(etcdtest.DialAs(b, ipamd.proc.Addr, mtlstest.Operator))
	havipc := havipv1.NewHaVipServiceClient(etcdtest.DialAs(b, havipd.proc.Addr, mtlstest.Operator))
	ctx := tenant.Outgoing(context.Background(), "acct-churn")
	vpc, err := ipamc.CreateVpc(ctx, &ipamv1.CreateVpcRequest{VpcName: "v", CidrBlock: "10.0.0.0/12"})
	if err != nil {
		b.Fatal(err)
	}
	var subnets []string
	for i := 0; len(subnets)*65000 < *churnN; i++ {
		sn, err := ipamc.CreateSubnet(ctx, &ipamv1.CreateSubnetRequest{VpcId: vpc.GetVpc().GetVpcId(), SubnetName: "s", CidrBlock: fmt.Sprintf("10.%d.0.0/16", i)})
		if err != nil {
			b.Fatal(err)
		}
		subnets = append(subnets, sn.GetSubnet().GetSubnetId())
	}
	type round struct {
		db, inUse int64
		took      time.Duration
	}
	var rounds []round
	for range *churnRounds {
		t0 := time.Now()
		var mu sync.Mutex
		var made []string
		loadtest.Throughput(b, 50, *churnN, func(i int) error {
			r, err := havipc.CreateHaVip(ctx, &havipv1.CreateHaVipRequest{VpcId: vpc.GetVpc().GetVpcId(), SubnetId: subnets[i/65000], HavipName: "h-" + strconv.Itoa(i)})
			if err != nil {
				return err
			}
			mu.Lock()
			made = append(made, r.GetHavip().GetHavipId())
			mu.Unlock()
			return nil
		})
		loadtest.Throughput(b, 50, len(made), func(i int) error {
			_, err := havipc.DeleteHaVip(ctx, &havipv1.DeleteHaVipRequest{HavipId: made[i]})
			return err
		})
		db, inUse := c.dbSize()
		rounds = append(rounds, round{db, inUse, time.Since(t0)})
		b.Logf("round %d: database %d MB (%d MB in use) after %v", len(rounds), db>>20, inUse>>20, time.Since(t0).Round(time.Second))
	}
	fmt.Printf("\nchurn: %d HAVIPs created and deleted per round, etcd auto-compaction every %v\n", *churnN, *churnRetention)
	fmt.Printf("%-8s %14s %14s %12s %10s\n", "round", "database", "in use", "vs round 1", "took")
	for i, r := range rounds {
		fmt.Printf("%-8d %11.1f MB %11.1f MB %11.2fx %10v\n", i+1, float64(r.db)/(1<<20), float64(r.inUse)/(1<<20), float64(r.db)/float64(rounds[0].db), r.took.Round(time.Second))
	}
	b.ReportMetric(float64(rounds[len(rounds)-1].db)/float64(rounds[0].db), "db-last/first")
}
