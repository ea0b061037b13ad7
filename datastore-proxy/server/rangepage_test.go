package server

import (
	"bytes"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// parsePage takes a RangeResponse's encoding apart, and finalChunk with
// the parts of the pages encodes what Range would answer for them all.
func TestParsePage(t *testing.T) {
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
		mixed = protowire.AppendBytes(protowire.AppendTag(mixed, rangeKvsField, protowire.BytesType), b)
		if string(k.Key) == "/a" {
			h, _ := proto.Marshal(full.Header)
			mixed = protowire.AppendBytes(protowire.AppendTag(mixed, rangeHeaderField, protowire.BytesType), h)
			mixed = protowire.AppendVarint(protowire.AppendTag(mixed, rangeCountField, protowire.VarintType), 7)
		}
	}
	mixed = protowire.AppendVarint(protowire.AppendTag(mixed, rangeMoreField, protowire.VarintType), 1)
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
			p, err := parsePage(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.n != tc.n || string(p.last) != tc.last || p.more != tc.more || p.count != tc.count || headerRevision(p.header) != tc.headRev {
				t.Fatalf("page: %d keys, last %q, more %v, count %d, revision %d", p.n, p.last, p.more, p.count, headerRevision(p.header))
			}
			var got etcdserverpb.RangeResponse
			if err := proto.Unmarshal(rawOnly(finalChunk(p.header, p.kvs, p.more, p.count)), &got); err != nil {
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
	if p, _ := parsePage(enc); &p.kvs[0] != &enc[bytes.Index(enc, p.kvs)] {
		t.Errorf("kvs in one run are copied, want a slice of the encoding")
	}
	if _, err := parsePage([]byte{0x12, 0x40, 0x01}); err == nil {
		t.Errorf("a truncated encoding parsed")
	}
}
