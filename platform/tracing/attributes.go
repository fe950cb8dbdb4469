package tracing

import (
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The attributes the services put on their spans, beside otelgrpc's rpc.* ones.
const (
	// Account is the tenant a call acts for.
	Account = attribute.Key("havip.account")
	// HaVipID is the HAVIP a call names or made.
	HaVipID = attribute.Key("havip.havip_id")
	// SubnetID is the subnet a call names.
	SubnetID = attribute.Key("havip.subnet_id")
	// Owner is what an address is allocated for (an ENI or a HAVIP ID).
	Owner = attribute.Key("havip.owner")
	// Owners are what the addresses of a batch are allocated for (the first maxOwners).
	Owners = attribute.Key("havip.owners")
	// Reason is the reason of a refusal (platform/apierr), e.g. "InvalidParameterValue.Reserved".
	Reason = attribute.Key("havip.reason")
)

// fields are the message fields read into attributes: top-level strings, and strings of a
// message field one level down (a response's resource: CreateHaVipResponse.havip.havip_id).
var fields = map[protoreflect.Name]attribute.Key{"havip_id": HaVipID, "subnet_id": SubnetID, "owner": Owner}

// listFields are the repeated string fields read into attributes (top level only).
var listFields = map[protoreflect.Name]attribute.Key{"owners": Owners}

// maxOwners bounds a list attribute.
const maxOwners = 16

// MessageAttributes returns the IDs a request or response carries (havip_id, subnet_id, owner,
// owners), for the span of the call; nil for anything but a protobuf message. It reads the
// message by reflection: call it only for a span that records.
func MessageAttributes(m any) []attribute.KeyValue {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	var out []attribute.KeyValue
	seen := map[attribute.Key]bool{}
	var walk func(msg protoreflect.Message, depth int)
	walk = func(msg protoreflect.Message, depth int) {
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.StringKind && depth == 0:
				if k, ok := listFields[fd.Name()]; ok {
					l := v.List()
					vals := make([]string, 0, min(l.Len(), maxOwners))
					for i := 0; i < l.Len() && i < maxOwners; i++ {
						vals = append(vals, l.Get(i).String())
					}
					out = append(out, k.StringSlice(vals))
				}
			case fd.IsList() || fd.IsMap():
			case fd.Kind() == protoreflect.StringKind:
				if k, ok := fields[fd.Name()]; ok && !seen[k] && v.String() != "" {
					seen[k] = true
					out = append(out, k.String(v.String()))
				}
			case fd.Kind() == protoreflect.MessageKind && depth == 0:
				walk(v.Message(), depth+1)
			}
			return true
		})
	}
	walk(pm.ProtoReflect(), 0)
	return out
}
