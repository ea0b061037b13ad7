package server

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// BenchmarkMarshalList is the cost of sending a list of 100 objects of
// 1 KiB, pre-encoded (listRaw's answer), by the server's Codec and by
// gRPC's proto codec.
func BenchmarkMarshalList(b *testing.B) {
	list := &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 1000}, Count: 250, More: true}
	for i := range 100 {
		list.Kvs = append(list.Kvs, &mvccpb.KeyValue{Key: []byte("/registry/bench/1/w1/0000" + string(rune('0'+i%10))), Value: make([]byte, 1024), ModRevision: int64(i)})
	}
	enc, err := proto.Marshal(list)
	if err != nil {
		b.Fatal(err)
	}
	raw := &etcdserverpb.RangeResponse{}
	raw.ProtoReflect().SetUnknown(protoreflect.RawFields(enc))
	b.Run("Codec", func(b *testing.B) {
		for b.Loop() {
			out, err := Codec{}.Marshal(raw)
			if err != nil {
				b.Fatal(err)
			}
			out.Free()
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			out, err := protoCodec.Marshal(raw)
			if err != nil {
				b.Fatal(err)
			}
			out.Free()
		}
	})
}

// A RangeStream chunk holding listRaw's bytes is sent as the proto codec
// would encode the same chunk decoded.
func TestCodecSendsARawChunkAsProto(t *testing.T) {
	list := &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 7}, Count: 3, More: true,
		Kvs: []*mvccpb.KeyValue{{Key: []byte("/a"), Value: []byte("x"), ModRevision: 5}, {Key: []byte("/b"), ModRevision: 6}}}
	enc, err := proto.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	raw := &etcdserverpb.RangeResponse{}
	raw.ProtoReflect().SetUnknown(protoreflect.RawFields(enc))
	out, err := Codec{}.Marshal(&etcdserverpb.RangeStreamResponse{RangeResponse: raw})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d buffers, want 2 (the field's head and the bytes as they are)", len(out))
	}
	var got etcdserverpb.RangeStreamResponse
	if err := proto.Unmarshal(out.Materialize(), &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.RangeResponse, list) {
		t.Fatalf("decoded %v, want %v", got.RangeResponse, list)
	}
}
