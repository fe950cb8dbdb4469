package arpbroker_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	arpbrokerv1 "github.com/openhavip/havip/proto/arpbroker/v1"

	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/services/arpbroker"
)

// TestStreamJudgesAtOnceInOrder: an agent sends many reports on its stream before it reads an
// answer, and closes its side. The broker answers every one, in order; it judges the reports of
// different VIPs together (they commit in fewer etcd transactions than there are claims), and
// the reports of one VIP one after the other (each moves the owner, the last one wins).
func TestStreamJudgesAtOnceInOrder(t *testing.T) {
	c := suite(t, arpbroker.Config{HoldDown: time.Nanosecond}) // every announcement may move the owner
	w := buildBig(t, c)
	sess := session(t, c, 60)
	awaitLeader(t, c, sess)
	havips := manyHaVips(t, c, w, 40)
	cli := etcdtest.Client(t, etcdEndpoint)

	// 40 VIPs claimed once each by s1, and between them the open HAVIP's VIP claimed 20 times,
	// by p1 and s1 in turn: both ENIs are on host-1, whose agent reports them all.
	type sent struct {
		id  string
		eni nic
	}
	var reports []sent
	for i, h := range havips {
		reports = append(reports, sent{h.GetHavipId(), w.s1})
		if i%2 == 0 {
			reports = append(reports, sent{w.open.GetHavipId(), []nic{w.p1, w.s1}[i/2%2]})
		}
	}
	vipOf := map[string]string{w.open.GetHavipId(): w.open.GetVip()}
	for _, h := range havips {
		vipOf[h.GetHavipId()] = h.GetVip()
	}
	before := etcdtest.Must[*clientv3.GetResponse](t)(cli.Get(context.Background(), "probe-revision")).Header.Revision

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream := etcdtest.Must[arpbrokerv1.ArpBrokerService_StreamArpAnnouncementsClient](t)(c.broker.host(w.s1.host).StreamArpAnnouncements(ctx))
	for _, r := range reports {
		if err := stream.Send(&arpbrokerv1.StreamArpAnnouncementsRequest{Report: garp(sess, r.eni, vipOf[r.id])}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var lastRevision int64
	for i := 0; ; i++ {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if i != len(reports) {
				t.Fatalf("%d answers to %d reports", i, len(reports))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(reports) {
			t.Fatalf("more answers than the %d reports: %v", len(reports), resp)
		}
		r := resp.GetResult()
		if r.GetHavipId() != reports[i].id || r.GetResult() != arpbrokerv1.ClaimResult_CLAIM_RESULT_ACCEPTED {
			t.Fatalf("answer %d: %v (error %d %s); want %s accepted", i, r, resp.GetErrorCode(), resp.GetErrorMessage(), reports[i].id)
		}
		if reports[i].id == w.open.GetHavipId() {
			if r.GetRevision() <= lastRevision {
				t.Fatalf("answer %d: the open HAVIP's owner at revision %d after %d: judged out of order", i, r.GetRevision(), lastRevision)
			}
			lastRevision = r.GetRevision()
		}
	}
	after := etcdtest.Must[*clientv3.GetResponse](t)(cli.Get(context.Background(), "probe-revision")).Header.Revision
	if commits := after - before; commits >= int64(len(reports)) {
		t.Errorf("%d claims committed in %d etcd revisions: the stream's reports were judged one at a time", len(reports), commits)
	}
	lastOpen := reports[len(reports)-1]
	for i := len(reports) - 1; lastOpen.id != w.open.GetHavipId(); i-- {
		lastOpen = reports[i]
	}
	if got := state(t, c, w.ctx, w.open.GetHavipId()).GetNetworkInterfaceId(); got != lastOpen.eni.id {
		t.Fatalf("the open HAVIP is owned by %s; its last announcer was %s", got, lastOpen.eni.id)
	}
}
