package chaos

import (
	"fmt"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Outcome is what a call's answer says about its effect.
type Outcome int

// The outcomes of a call.
const (
	// OK: it took effect (a read: found).
	OK Outcome = iota
	// Refused: a definite refusal; it changed nothing.
	Refused
	// NotFound: the resource does not exist; nothing changed.
	NotFound
	// Unknown: it may or may not have taken effect (a timeout, a replica or etcd unreachable).
	Unknown
	// Conflict: concurrent changes won every attempt (Aborted); it changed nothing, whatever
	// the state.
	Conflict
)

func (o Outcome) String() string {
	return [...]string{"ok", "refused", "not-found", "unknown", "conflict"}[o]
}

// OutcomeOf classifies a call's error. Only codes that promise nothing was done are definite.
func OutcomeOf(err error) Outcome {
	switch status.Code(err) {
	case codes.OK:
		return OK
	case codes.NotFound:
		return NotFound
	case codes.Aborted:
		return Conflict
	case codes.InvalidArgument, codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange,
		codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted:
		return Refused
	default:
		return Unknown
	}
}

// HaVipState is what the model knows of one HAVIP.
type HaVipState struct {
	Exists, Gone bool
	Name, Range  string // Range: the CVM its switch range holds besides the fixed ones ("": none)
	EIP          string
}

// The operations of the HAVIP model.
const (
	OpCreate   = "create"
	OpDescribe = "describe"
	OpRename   = "rename"
	OpRange    = "range" // set the extra CVM of the range (Arg; "": remove it)
	OpBind     = "bind"  // bind the EIP Arg
	OpUnbind   = "unbind"
	OpDelete   = "delete"
)

// HaVipInput is one call on HAVIP ID.
type HaVipInput struct{ ID, Op, Arg string }

// HaVipOutput is its answer; a describe that found the HAVIP carries what it showed.
type HaVipOutput struct {
	Outcome          Outcome
	Name, Range, EIP string
}

// apply is op's effect on s when it succeeds, and whether it may succeed from s.
func (in HaVipInput) apply(s HaVipState) (HaVipState, bool) {
	switch in.Op {
	case OpCreate:
		return HaVipState{Exists: true, Name: in.Arg}, !s.Exists && !s.Gone
	case OpRename:
		s.Name = in.Arg
	case OpRange:
		s.Range = in.Arg
	case OpBind:
		if s.EIP != "" && s.EIP != in.Arg {
			return s, false
		}
		s.EIP = in.Arg
	case OpUnbind:
		s.EIP = ""
	case OpDelete:
		if s.EIP != "" {
			return s, false // a bound HAVIP refuses to go
		}
		return HaVipState{Gone: true}, s.Exists
	}
	return s, s.Exists
}

// refusable reports whether the service may refuse op on s, an existing HAVIP: a rename
// never; a range edit that is already done (the CVM in the range twice, or not in it); a bind
// always (the EIP may be bound elsewhere, which this HAVIP's history does not show); an unbind
// of a HAVIP without an EIP; a delete of one with an EIP.
func (in HaVipInput) refusable(s HaVipState) bool {
	switch in.Op {
	case OpRange:
		return s.Range == in.Arg
	case OpBind:
		return true
	case OpUnbind:
		return s.EIP == ""
	case OpDelete:
		return s.EIP != ""
	}
	return false
}

func stepHaVip(state, input, output any) []any {
	s, in, out := state.(HaVipState), input.(HaVipInput), output.(HaVipOutput)
	if in.Op == OpDescribe {
		switch out.Outcome {
		case OK:
			if s.Exists && s.Name == out.Name && s.Range == out.Range && s.EIP == out.EIP {
				return []any{s}
			}
		case NotFound:
			if !s.Exists {
				return []any{s}
			}
		}
		return nil
	}
	next, can := in.apply(s)
	switch out.Outcome {
	case OK:
		if can {
			return []any{next}
		}
	case NotFound:
		if !s.Exists {
			return []any{s}
		}
	case Refused:
		if s.Exists && in.refusable(s) {
			return []any{s}
		}
	case Conflict:
		return []any{s}
	case Unknown:
		if can {
			return []any{s, next}
		}
		return []any{s}
	}
	return nil
}

// HaVipModel checks each HAVIP's history on its own: create, describe, rename, range edits,
// EIP bind and unbind, delete.
var HaVipModel = (&porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partition(h, func(op porcupine.Operation) string { return op.Input.(HaVipInput).ID })
	},
	Init:  func() []any { return []any{HaVipState{}} },
	Step:  stepHaVip,
	Equal: func(a, b any) bool { return a.(HaVipState) == b.(HaVipState) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(HaVipInput), output.(HaVipOutput)
		if in.Op == OpDescribe && out.Outcome == OK {
			return fmt.Sprintf("describe %s → name=%q range=%q eip=%q", in.ID, out.Name, out.Range, out.EIP)
		}
		return fmt.Sprintf("%s %s %q → %v", in.Op, in.ID, in.Arg, out.Outcome)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%+v", state.(HaVipState)) },
}).ToModel()

// OwnState is a HAVIP's ownership: the owner ENI ("" none) and the fencing revision of its
// last change.
type OwnState struct {
	ENI string
	Rev int64
}

// OwnInput is an owner change (Write: to ENI at Rev) or a read of HAVIP ID's ownership.
type OwnInput struct {
	ID    string
	Write bool
	ENI   string
	Rev   int64
}

// OwnModel is a register per HAVIP whose writes are the owner changes in revision order: a
// history of claims and reads is explained by one order of claims when porcupine finds a
// linearization.
var OwnModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		return partition(h, func(op porcupine.Operation) string { return op.Input.(OwnInput).ID })
	},
	Init: func() any { return OwnState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in := state.(OwnState), input.(OwnInput)
		if in.Write {
			return in.Rev > s.Rev, OwnState{in.ENI, in.Rev}
		}
		o := output.(OwnState)
		if o.ENI == "" && o.Rev == 0 { // Describe shows no revision for a HAVIP without an owner
			return s.ENI == "", s
		}
		return o == s, s
	},
	DescribeOperation: func(input, output any) string {
		in := input.(OwnInput)
		if in.Write {
			return fmt.Sprintf("owner of %s := %q @%d", in.ID, in.ENI, in.Rev)
		}
		return fmt.Sprintf("read %s → %+v", in.ID, output)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%+v", state.(OwnState)) },
}

func partition(h []porcupine.Operation, key func(porcupine.Operation) string) [][]porcupine.Operation {
	idx := map[string]int{}
	var out [][]porcupine.Operation
	for _, op := range h {
		k := key(op)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], op)
	}
	return out
}
