package gateway

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// filterPrefix marks the query parameters that become Describe filters:
// ?filter.havip-name=a&filter.havip-name=b&filter.vpc-id=vpc-1 is
// filters=[{name: "havip-name", values: [a, b]}, {name: "vpc-id", values: [vpc-1]}].
const filterPrefix = "filter."

// knownField reports whether path (field names joined by dots, proto or JSON names) names a
// field of md: grpc-gateway would skip an unknown parameter silently.
func knownField(md protoreflect.MessageDescriptor, path string) bool {
	for _, part := range strings.Split(path, ".") {
		if md == nil {
			return false
		}
		fd := md.Fields().ByName(protoreflect.Name(part))
		if fd == nil {
			fd = md.Fields().ByJSONName(part)
		}
		if fd == nil {
			return false
		}
		md = fd.Message()
	}
	return true
}

// filterParser reads filter.<key> query parameters into a request's `filters` field (a
// repeated message of `name` and `values`); every other parameter is grpc-gateway's as usual.
type filterParser struct{}

// Parse implements runtime.QueryParameterParser.
func (filterParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	rest := url.Values{}
	filters := map[string][]string{}
	for k, vs := range values {
		if name, ok := strings.CutPrefix(k, filterPrefix); ok {
			filters[name] = append(filters[name], vs...)
			continue
		}
		if !knownField(md, k) {
			return fmt.Errorf("unknown query parameter %q", k)
		}
		rest[k] = vs
	}
	if err := (&runtime.DefaultQueryParser{}).Parse(msg, rest, filter); err != nil {
		return err
	}
	if len(filters) == 0 {
		return nil
	}
	m := msg.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("filters")
	if fd == nil || !fd.IsList() || fd.Message() == nil {
		return fmt.Errorf("this operation takes no filter.* parameters")
	}
	names := make([]string, 0, len(filters))
	for n := range filters {
		names = append(names, n)
	}
	sort.Strings(names)
	list := m.Mutable(fd).List()
	for _, n := range names {
		f := list.NewElement().Message()
		fields := f.Descriptor().Fields()
		nameFD, valuesFD := fields.ByName("name"), fields.ByName("values")
		f.Set(nameFD, protoreflect.ValueOfString(n))
		vl := f.Mutable(valuesFD).List()
		for _, v := range filters[n] {
			vl.Append(protoreflect.ValueOfString(v))
		}
		list.Append(protoreflect.ValueOfMessage(f))
	}
	return nil
}
