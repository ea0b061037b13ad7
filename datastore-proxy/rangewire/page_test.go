package rangewire

import (
	"bytes"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Split takes a RangeResponse's encoding apart, and Final with the parts
// encodes the same response again.
func TestSplit(t *testing.T) {
	kv := func(k string) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(k), Value: []byte("v" + k), ModRevision: 9}
	}
	full := &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{ClusterId: 1, Revision: 42}, Kvs: []*mvccpb.KeyValue{kv("/a"), kv("/b"), kv("/c")}, More: true, Count: 7}
	enc, err := proto.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	// The same fields in another order: kvs not in one run.
	var mixed []byte
	for _, k := range full.Kvs {
		b, _ := proto.Marshal(k)
		mixed = protowire.AppendBytes(protowire.AppendTag(mixed, rangeKvs, protowire.BytesType), b)
		if string(k.Key) == "/a" {
			h, _ := proto.Marshal(full.Header)
			mixed = protowire.AppendBytes(protowire.AppendTag(mixed, rangeHeader, protowire.BytesType), h)
			mixed = protowire.AppendVarint(protowire.AppendTag(mixed, rangeCount, protowire.VarintType), 7)
		}
	}
	mixed = protowire.AppendVarint(protowire.AppendTag(mixed, rangeMore, protowire.VarintType), 1)
	empty, _ := proto.Marshal(&etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 5}})

	for _, tc := range []struct {
		name           string
		raw            []byte
		n              int
		last           string
		more           bool
		count, headRev int64
	}{
		{"in field order", enc, 3, "/c", true, 7, 42},
		{"fields mixed", mixed, 3, "/c", true, 7, 42},
		{"no keys", empty, 0, "", false, 0, 5},
		{"nothing", nil, 0, "", false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Split(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.N != tc.n || string(p.Last) != tc.last || p.More != tc.more || p.Count != tc.count || p.Revision() != tc.headRev {
				t.Fatalf("page: %d keys, last %q, more %v, count %d, revision %d", p.N, p.Last, p.More, p.Count, p.Revision())
			}
			var got etcdserverpb.RangeResponse
			if err := proto.Unmarshal(Final(p.Header, p.Kvs, p.More, p.Count), &got); err != nil {
				t.Fatal(err)
			}
			var want etcdserverpb.RangeResponse
			if err := proto.Unmarshal(tc.raw, &want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, &want) {
				t.Fatalf("final chunk %v, want %v", &got, &want)
			}
		})
	}
	if p, _ := Split(enc); &p.Kvs[0] != &enc[bytes.Index(enc, p.Kvs)] {
		t.Errorf("kvs in one run are copied, want a slice of the encoding")
	}
	if _, err := Split([]byte{0x12, 0x40, 0x01}); err == nil {
		t.Errorf("a truncated encoding parsed")
	}
}

// Split never panics, and on any response's encoding, Final of its parts
// is the same response (its own unknown fields aside, which Split drops).
func FuzzSplit(f *testing.F) {
	for _, r := range []*etcdserverpb.RangeResponse{
		{},
		{Header: &etcdserverpb.ResponseHeader{Revision: 3}, Count: 2, More: true,
			Kvs: []*mvccpb.KeyValue{{Key: []byte("/a"), Value: []byte("x"), ModRevision: 2}, {Key: []byte("/b")}}},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Split(data)
		var want etcdserverpb.RangeResponse
		if proto.Unmarshal(data, &want) != nil {
			return
		}
		want.ProtoReflect().SetUnknown(nil)
		canonical, err := proto.Marshal(&want)
		if err != nil {
			return
		}
		p, err := Split(canonical)
		if err != nil {
			t.Fatalf("a response's own encoding: %v", err)
		}
		var got etcdserverpb.RangeResponse
		if err := proto.Unmarshal(Final(p.Header, p.Kvs, p.More, p.Count), &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, &want) || p.N != len(want.Kvs) {
			t.Fatalf("Final of the parts: %v (%d keys), want %v", &got, p.N, &want)
		}
	})
}
