package eip_test

import (
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eipv1 "github.com/openhavip/havip/proto/eip/v1"
	ipamv1 "github.com/openhavip/havip/proto/ipam/v1"

	"github.com/openhavip/havip/platform/apierr"
	"github.com/openhavip/havip/platform/etcdtest"
	"github.com/openhavip/havip/services/eip"
)

// TestDeletesRefuseBoundEni: while eipd has an EIP bound to an ENI, ipamd refuses to delete
// that ENI, or the CVM whose primary ENI it is (UnsupportedOperation.AddressBound); once
// unbound, both deletes succeed and the EIP can no longer be bound to them.
func TestDeletesRefuseBoundEni(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	eipID := w.eip1.GetAddressId()
	associate := func(eni string) error {
		_, err := c.eip.AssociateAddress(w.ctx, &eipv1.AssociateAddressRequest{AddressId: eipID, NetworkInterfaceId: eni})
		return err
	}
	disassociate := func() {
		t.Helper()
		etcdtest.Must[*eipv1.DisassociateAddressResponse](t)(c.eip.DisassociateAddress(w.ctx, &eipv1.DisassociateAddressRequest{AddressId: eipID}))
	}
	deleteEni := func(eni string) error {
		_, err := c.ipam.DeleteNetworkInterface(w.ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni})
		return err
	}
	deleteInstance := func(ins string) error {
		_, err := c.ipam.DeleteInstance(w.ctx, &ipamv1.DeleteInstanceRequest{InstanceId: ins})
		return err
	}

	// A detached ENI with an EIP.
	eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.ipam.CreateNetworkInterface(w.ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnet, NetworkInterfaceName: "e"})).GetNetworkInterface().GetNetworkInterfaceId()
	if err := associate(eni); err != nil {
		t.Fatal(err)
	}
	if err := deleteEni(eni); status.Code(err) != codes.FailedPrecondition || apierr.Reason(err) != apierr.ReasonAddressBound {
		t.Fatalf("delete of an ENI with an EIP: %v", err)
	}
	disassociate()
	if err := deleteEni(eni); err != nil {
		t.Fatalf("delete of the unbound ENI: %v", err)
	}
	if err := associate(eni); status.Code(err) != codes.NotFound {
		t.Fatalf("bind to the deleted ENI: %v", err)
	}

	// A CVM whose primary ENI has the EIP.
	ins := w.eni.GetInstanceId()
	if err := associate(w.eni.GetNetworkInterfaceId()); err != nil {
		t.Fatal(err)
	}
	if err := deleteInstance(ins); status.Code(err) != codes.FailedPrecondition || apierr.Reason(err) != apierr.ReasonAddressBound {
		t.Fatalf("delete of a CVM whose primary ENI has an EIP: %v", err)
	}
	disassociate()
	if err := deleteInstance(ins); err != nil {
		t.Fatalf("delete of the CVM once unbound: %v", err)
	}
	if err := associate(w.eni.GetNetworkInterfaceId()); status.Code(err) != codes.NotFound {
		t.Fatalf("bind to the deleted CVM's primary ENI: %v", err)
	}
}

// TestBindRacesEniDelete: an EIP bind and a delete of the same ENI, run at once many times,
// never both succeed, and no EIP ends bound to an ENI that does not exist.
func TestBindRacesEniDelete(t *testing.T) {
	t.Parallel()
	c := suite(t, eip.Config{})
	w := build(t, c)
	eipID := w.eip1.GetAddressId()
	var bound, deleted int
	for round := range 40 {
		eni := etcdtest.Must[*ipamv1.CreateNetworkInterfaceResponse](t)(c.ipam.CreateNetworkInterface(w.ctx, &ipamv1.CreateNetworkInterfaceRequest{SubnetId: w.subnet, NetworkInterfaceName: "e"})).GetNetworkInterface().GetNetworkInterfaceId()
		var wg sync.WaitGroup
		start := make(chan struct{})
		var bindErr, deleteErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, bindErr = c.eip.AssociateAddress(w.ctx, &eipv1.AssociateAddressRequest{AddressId: eipID, NetworkInterfaceId: eni})
		}()
		go func() {
			defer wg.Done()
			<-start
			_, deleteErr = c.ipam.DeleteNetworkInterface(w.ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni})
		}()
		close(start)
		wg.Wait()
		if bindErr == nil && deleteErr == nil {
			t.Fatalf("round %d: both the bind and the delete of %s succeeded", round, eni)
		}
		if bindErr == nil {
			bound++
		}
		if deleteErr == nil {
			deleted++
		}
		_, err := c.ipam.DescribeNetworkInterfaces(w.ctx, &ipamv1.DescribeNetworkInterfacesRequest{NetworkInterfaceIds: []string{eni}})
		exists := err == nil
		if !exists && status.Code(err) != codes.NotFound {
			t.Fatal(err)
		}
		if e := describe(t, c, w.ctx, eipID); e.GetNetworkInterfaceId() != "" {
			if !exists {
				t.Fatalf("round %d: the EIP is bound to deleted ENI %s", round, e.GetNetworkInterfaceId())
			}
			etcdtest.Must[*eipv1.DisassociateAddressResponse](t)(c.eip.DisassociateAddress(w.ctx, &eipv1.DisassociateAddressRequest{AddressId: eipID}))
		}
		if exists {
			etcdtest.Must[*ipamv1.DeleteNetworkInterfaceResponse](t)(c.ipam.DeleteNetworkInterface(w.ctx, &ipamv1.DeleteNetworkInterfaceRequest{NetworkInterfaceId: eni}))
		}
	}
	t.Logf("40 rounds: the bind won %d, the delete won %d", bound, deleted)
}
