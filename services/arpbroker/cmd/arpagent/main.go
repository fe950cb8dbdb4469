// Command arpagent is the host agent: it reports the gratuitous ARP of the host's VM ports to arpbrokerd.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/config"
	"github.com/openhavip/havip/platform/logging"
	"github.com/openhavip/havip/platform/tracing"
	"github.com/openhavip/havip/services/arpbroker/agent"
)

// ports collects -port ifname=eni-id flags.
type ports map[string]string

func (p ports) String() string { return fmt.Sprint(map[string]string(p)) }

func (p ports) Set(v string) error {
	ifname, eni, ok := strings.Cut(v, "=")
	if !ok || ifname == "" || eni == "" {
		return fmt.Errorf("want ifname=eni-id, got %q", v)
	}
	p[ifname] = eni
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("arpagent", flag.ExitOnError)
	host, _ := os.Hostname()
	cfg := agent.Config{Ports: ports{}}
	fs.StringVar(&cfg.AgentID, "agent-id", config.Env("HAVIP_AGENT_ID", "agent-"+host), "agent ID (env HAVIP_AGENT_ID)")
	fs.StringVar(&cfg.HostID, "host-id", config.Env("HAVIP_HOST_ID", host), "host ID (env HAVIP_HOST_ID)")
	broker := config.String(fs, "broker", "HAVIP_BROKER_ADDR", "127.0.0.1:50051", "arpbrokerd address")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", 10*time.Second, "session TTL: ownerships lapse this long after the agent dies")
	fs.Var(ports(cfg.Ports), "port", "a VM port and its ENI, ifname=eni-id (repeat for each port)")
	level := config.String(fs, "log-level", "HAVIP_LOG_LEVEL", "info", "debug, info, warn or error")
	_ = fs.Parse(os.Args[1:])
	log := logging.New(os.Stderr, *level, "arpagent")
	conn, err := grpc.NewClient(*broker, append(tracing.ClientOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		log.Error("broker", "err", err)
		os.Exit(1)
	}
	defer conn.Close()
	if err := agent.New(cfg, arpbrokerv1.NewArpBrokerServiceClient(conn), log).Run(ctx); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
