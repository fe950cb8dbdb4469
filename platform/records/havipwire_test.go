package records_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/openhavip/havip/platform/records"
)

func sampleHaVips() []records.HaVip {
	return []records.HaVip{
		{},
		{ID: "havip-abcd1234", Account: "acct-1", Name: "web", VpcID: "vpc-1", SubnetID: "subnet-1",
			VIP: netip.MustParseAddr("10.0.0.7"), CheckAssociate: true,
			Associations: []records.Association{{InstanceID: "ins-1", Type: records.TypeCVM}, {InstanceID: "eni-2", Type: records.TypeENI}},
			ClientToken:  "tok", Created: time.Date(2026, 12, 1, 3, 4, 5, 678, time.UTC)},
		{ID: "havip-x", VIP: netip.MustParseAddr("fd00::1"), Created: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "ünïcode name", Associations: []records.Association{{}}, Created: time.Unix(-5, 999999999).UTC()},
	}
}

// TestHaVipWire: every HAVIP survives EncodeHaVip and DecodeHaVip, and its JSON form (that of
// records earlier versions wrote) decodes to the same HAVIP.
func TestHaVipWire(t *testing.T) {
	for _, h := range sampleHaVips() {
		got, err := records.DecodeHaVip([]byte(records.EncodeHaVip(h)))
		if err != nil || !reflect.DeepEqual(got, h) {
			t.Fatalf("wire round trip of %+v: %+v, %v", h, got, err)
		}
		js, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err = records.DecodeHaVip(js)
		if err != nil || !reflect.DeepEqual(got, h) {
			t.Fatalf("JSON of %+v: %+v, %v", h, got, err)
		}
	}
	// Truncated, a VIP of 3 bytes, a group, a bad tag, an ID as a varint, a time as bytes, a
	// check as bytes, an association's instance as a varint.
	for _, bad := range []string{"\x0a\x05ab", "\x32\x03abc", "\x0b", "\xff", "\x08\x01", "\x52\x01a", "\x3a\x00", "\x42\x02\x08\x01"} {
		if h, err := records.DecodeHaVip([]byte(bad)); err == nil {
			t.Errorf("%q decoded as %+v", bad, h)
		}
	}
}

// TestHaVipWireIsTheDocumentedMessage: a real protocol-buffer implementation, given the message
// EncodeHaVip's documentation states, reads what EncodeHaVip writes field by field, and what it
// writes from the same values DecodeHaVip reads back.
func TestHaVipWireIsTheDocumentedMessage(t *testing.T) {
	str, i64, i32, byt, boo, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(),
		descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(), descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(),
		descriptorpb.FieldDescriptorProto_TYPE_BOOL.Enum(), descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, n int32, typ *descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ, Label: label, JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("havip_record.proto"), Package: proto.String("test"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("HaVip"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str, opt, ""), field("account", 2, str, opt, ""), field("name", 3, str, opt, ""),
				field("vpc_id", 4, str, opt, ""), field("subnet_id", 5, str, opt, ""), field("vip", 6, byt, opt, ""),
				field("check_associate", 7, boo, opt, ""), field("associations", 8, msg, rep, ".test.Association"),
				field("client_token", 9, str, opt, ""), field("created_seconds", 10, i64, opt, ""), field("created_nanos", 11, i32, opt, ""),
			}},
			{Name: proto.String("Association"), Field: []*descriptorpb.FieldDescriptorProto{
				field("instance_id", 1, str, opt, ""), field("type", 2, str, opt, ""),
			}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	desc := fd.Messages().ByName("HaVip")
	for _, h := range sampleHaVips() {
		m := dynamicpb.NewMessage(desc)
		if err := proto.Unmarshal([]byte(records.EncodeHaVip(h)), m); err != nil {
			t.Fatal(err)
		}
		get := func(name string) protoreflect.Value { return m.Get(desc.Fields().ByName(protoreflect.Name(name))) }
		if get("id").String() != h.ID || get("name").String() != h.Name || get("subnet_id").String() != h.SubnetID ||
			get("check_associate").Bool() != h.CheckAssociate || get("associations").List().Len() != len(h.Associations) ||
			get("client_token").String() != h.ClientToken {
			t.Fatalf("%+v read as %s", h, protojson.Format(m))
		}
		if !h.Created.IsZero() && (get("created_seconds").Int() != h.Created.Unix() || get("created_nanos").Int() != int64(h.Created.Nanosecond())) {
			t.Fatalf("created %v read as %s", h.Created, protojson.Format(m))
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := records.DecodeHaVip(b)
		if err != nil || !reflect.DeepEqual(back, h) {
			t.Fatalf("proto.Marshal of %+v decoded as %+v, %v", h, back, err)
		}
	}
}

// BenchmarkDecodeHaVip compares decoding a typical HAVIP from its stored form with decoding its
// JSON (earlier versions' form):
//
//	cd platform && go test ./records -run '^$' -bench DecodeHaVip
func BenchmarkDecodeHaVip(b *testing.B) {
	h := sampleHaVips()[1]
	js, _ := json.Marshal(h)
	wire := []byte(records.EncodeHaVip(h))
	for _, c := range []struct {
		name string
		val  []byte
	}{{"json", js}, {"wire", wire}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := records.DecodeHaVip(c.val); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
