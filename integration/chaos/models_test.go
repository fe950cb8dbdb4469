package chaos

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/openhavip/havip/platform/records"
)

func op(client int, call, ret int64, in, out any) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

// TestHaVipModel: the model accepts what may happen and rejects a lost write, a read of a
// deleted HAVIP, a second create, a delete of a bound one, and a refusal the state does not
// explain.
func TestHaVipModel(t *testing.T) {
	create := op(0, 0, 1, HaVipInput{"h", OpCreate, "a"}, HaVipOutput{Outcome: OK})
	for _, c := range []struct {
		name string
		ok   bool
		h    []porcupine.Operation
	}{
		{"rename then read", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: OK}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "b"})}},
		{"a lost rename", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: OK}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"a read concurrent with a rename", true, []porcupine.Operation{create, op(0, 2, 6, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: OK}),
			op(1, 3, 4, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"an unknown rename, seen or not", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: Unknown}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"}),
			op(1, 6, 7, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"a deleted HAVIP read back", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpDelete, ""}, HaVipOutput{Outcome: OK}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"a bound HAVIP deleted", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpBind, "e"}, HaVipOutput{Outcome: OK}),
			op(0, 4, 5, HaVipInput{"h", OpDelete, ""}, HaVipOutput{Outcome: OK})}},
		{"a bound HAVIP refuses delete", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpBind, "e"}, HaVipOutput{Outcome: OK}),
			op(0, 4, 5, HaVipInput{"h", OpDelete, ""}, HaVipOutput{Outcome: Refused}),
			op(0, 6, 7, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a", EIP: "e"})}},
		{"created twice", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpCreate, "a"}, HaVipOutput{Outcome: OK})}},
		{"a rename refused", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: Refused})}},
		{"a rename that lost to every concurrent change", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRename, "b"}, HaVipOutput{Outcome: Conflict}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"a delete that lost to every concurrent change", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpDelete, ""}, HaVipOutput{Outcome: Conflict}),
			op(1, 4, 5, HaVipInput{"h", OpDescribe, ""}, HaVipOutput{Outcome: OK, Name: "a"})}},
		{"a CVM added twice", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRange, "x"}, HaVipOutput{Outcome: OK}),
			op(0, 4, 5, HaVipInput{"h", OpRange, "x"}, HaVipOutput{Outcome: Refused})}},
		{"a CVM refused though not in the range", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRange, "x"}, HaVipOutput{Outcome: Refused})}},
		{"removing a CVM not in the range", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpRange, ""}, HaVipOutput{Outcome: Refused})}},
		{"an unbind of an unbound HAVIP", true, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpUnbind, ""}, HaVipOutput{Outcome: Refused})}},
		{"an unbind refused though bound", false, []porcupine.Operation{create, op(0, 2, 3, HaVipInput{"h", OpBind, "e"}, HaVipOutput{Outcome: OK}),
			op(0, 4, 5, HaVipInput{"h", OpUnbind, ""}, HaVipOutput{Outcome: Refused})}},
		{"an unbind refused, bound concurrently", true, []porcupine.Operation{create, op(0, 2, 5, HaVipInput{"h", OpBind, "e"}, HaVipOutput{Outcome: OK}),
			op(1, 3, 4, HaVipInput{"h", OpUnbind, ""}, HaVipOutput{Outcome: Refused})}},
	} {
		if got := porcupine.CheckOperations(HaVipModel, c.h); got != c.ok {
			t.Errorf("%s: linearizable %v, want %v", c.name, got, c.ok)
		}
	}
}

// TestOwnModel: owner changes apply in revision order, and a read sees the last one before it.
func TestOwnModel(t *testing.T) {
	w := func(call, ret int64, eni string, rev int64) porcupine.Operation {
		return op(0, call, ret, OwnInput{ID: "h", Write: true, ENI: eni, Rev: rev}, nil)
	}
	r := func(call, ret int64, eni string, rev int64) porcupine.Operation {
		return op(1, call, ret, OwnInput{ID: "h"}, OwnState{eni, rev})
	}
	for _, c := range []struct {
		name string
		ok   bool
		h    []porcupine.Operation
	}{
		{"in order", true, []porcupine.Operation{w(0, 1, "a", 10), r(2, 3, "a", 10), w(4, 5, "b", 12), r(6, 7, "b", 12)}},
		{"a stale read", false, []porcupine.Operation{w(0, 1, "a", 10), w(2, 3, "b", 12), r(4, 5, "a", 10)}},
		{"two owners at one revision", false, []porcupine.Operation{w(0, 1, "a", 10), r(2, 3, "b", 10)}},
		{"writes concurrent, applied by revision", true, []porcupine.Operation{w(0, 5, "b", 12), w(0, 5, "a", 10), r(6, 7, "b", 12)}},
		{"no owner after a lapse", true, []porcupine.Operation{w(0, 1, "a", 10), w(2, 3, "", 12), r(4, 5, "", 0)}},
		{"no owner while one is", false, []porcupine.Operation{w(0, 1, "a", 10), r(4, 5, "", 0)}},
		{"a revision going back", false, []porcupine.Operation{w(0, 1, "a", 12), w(2, 3, "b", 10)}},
	} {
		if got := porcupine.CheckOperations(OwnModel, c.h); got != c.ok {
			t.Errorf("%s: linearizable %v, want %v", c.name, got, c.ok)
		}
	}
}

// TestCheckTokens: a token on two HAVIPs, or on another HAVIP than its answer named, is a
// duplicate create; a token whose HAVIP was deleted, or another account's same token, is not.
func TestCheckTokens(t *testing.T) {
	hv := func(account, token string) records.HaVip { return records.HaVip{Account: account, ClientToken: token} }
	for _, c := range []struct {
		name     string
		havips   map[string]records.HaVip
		answered map[string]string
		ok       bool
	}{
		{"one each", map[string]records.HaVip{"h1": hv(Account, "t1"), "h2": hv(Account, ""), "h3": hv(Account, "t3")}, map[string]string{"t1": "h1", "t3": "h3"}, true},
		{"deleted since", map[string]records.HaVip{"h2": hv(Account, "")}, map[string]string{"t1": "h1"}, true},
		{"another account's token", map[string]records.HaVip{"h1": hv(Account, "t1"), "h9": hv("acct-other", "t1")}, map[string]string{"t1": "h1"}, true},
		{"two HAVIPs of one token", map[string]records.HaVip{"h1": hv(Account, "t1"), "h2": hv(Account, "t1")}, map[string]string{"t1": "h1"}, false},
		{"the answer named another", map[string]records.HaVip{"h2": hv(Account, "t1")}, map[string]string{"t1": "h1"}, false},
	} {
		if err := checkTokens(c.havips, c.answered); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}
