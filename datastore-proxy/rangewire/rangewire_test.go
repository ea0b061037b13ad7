package rangewire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"kplex.dev/datastore-proxy/leaseid"
)

const prefix = "/kplex/a/"

func TestOwn(t *testing.T) {
	header := &etcdserverpb.ResponseHeader{ClusterId: 7, MemberId: 8, Revision: 300, RaftTerm: 2}
	kv := func(key, value string, rev int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(key), Value: []byte(value), CreateRevision: rev, ModRevision: rev + 1, Version: 2, Lease: 9}
	}
	for _, tc := range []struct {
		name    string
		in      *etcdserverpb.RangeResponse
		want    *etcdserverpb.RangeResponse
		wantErr error
	}{{
		name: "empty",
		in:   &etcdserverpb.RangeResponse{},
		want: &etcdserverpb.RangeResponse{},
	}, {
		name: "count only: the header keeps its revision alone",
		in:   &etcdserverpb.RangeResponse{Header: header, Count: 12},
		want: &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 300}, Count: 12},
	}, {
		name: "keys lose the prefix, the rest is kept",
		in: &etcdserverpb.RangeResponse{Header: header, More: true, Count: 3, Kvs: []*mvccpb.KeyValue{
			kv(prefix+"registry/pods/x", "v1", 10), kv(prefix, "root", 11), kv(prefix+"k", string(make([]byte, 300)), 12)}},
		want: &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 300}, More: true, Count: 3, Kvs: []*mvccpb.KeyValue{
			kv("registry/pods/x", "v1", 10), kv("", "root", 11), kv("k", string(make([]byte, 300)), 12)}},
	}, {
		name: "a lease reads as its TTL, not the ID other tenants' keys share",
		in: &etcdserverpb.RangeResponse{Header: header, Count: 2, Kvs: []*mvccpb.KeyValue{
			{Key: []byte(prefix + "events/a"), Value: []byte("e"), ModRevision: 5, Lease: leaseid.New(3712, 0xdead_beef_0000_0000)},
			{Key: []byte(prefix + "leases/b"), ModRevision: 6, Lease: leaseid.New(15, 1<<63)}}},
		want: &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{Revision: 300}, Count: 2, Kvs: []*mvccpb.KeyValue{
			{Key: []byte("events/a"), Value: []byte("e"), ModRevision: 5, Lease: 3712},
			{Key: []byte("leases/b"), ModRevision: 6, Lease: 15}}},
	}, {
		name:    "another tenant's key is refused",
		in:      &etcdserverpb.RangeResponse{Header: header, Kvs: []*mvccpb.KeyValue{kv(prefix+"x", "", 1), kv("/kplex/b/x", "secret", 2)}},
		wantErr: ErrForeignKey,
	}, {
		name:    "a key that is the prefix cut short is refused",
		in:      &etcdserverpb.RangeResponse{Kvs: []*mvccpb.KeyValue{kv("/kplex/a", "", 1)}},
		wantErr: ErrForeignKey,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := proto.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Own(raw, prefix)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Own: err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Own: %v", err)
			}
			var resp etcdserverpb.RangeResponse
			if err := proto.Unmarshal(got, &resp); err != nil {
				t.Fatalf("decoding the result: %v", err)
			}
			if !proto.Equal(&resp, tc.want) {
				t.Fatalf("got %v\nwant %v", &resp, tc.want)
			}
		})
	}
}

func TestOwnRefusesBrokenInput(t *testing.T) {
	raw, err := proto.Marshal(&etcdserverpb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte(prefix + "x"), Value: []byte("v")}}})
	if err != nil {
		t.Fatal(err)
	}
	for cut := 1; cut < len(raw); cut++ {
		in := bytes.Clone(raw[:cut])
		if _, err := Own(in, prefix); err == nil {
			t.Errorf("Own of the response cut to %d of %d bytes: no error", cut, len(raw))
		}
	}
}

// FuzzOwn checks Own, which rewrites in place, against decoding the
// response, stripping its keys and encoding it again; on any other input
// it must fail rather than panic or let a foreign key through.
func FuzzOwn(f *testing.F) {
	f.Add([]byte{}, uint8(3), int64(42), true)
	f.Add([]byte("registry/pods/default/x"), uint8(1), int64(1<<40), false)
	f.Add(bytes.Repeat([]byte{0xff}, 200), uint8(7), int64(0), true)
	f.Fuzz(func(t *testing.T, seed []byte, n uint8, rev int64, more bool) {
		// A response built from the input ...
		in := &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{ClusterId: uint64(len(seed)), Revision: rev, RaftTerm: 3}, More: more, Count: int64(n)}
		for i := range int(n % 16) {
			key := append([]byte(prefix), seed[:min(len(seed), i*13)]...)
			value := bytes.Repeat(seed, i)
			in.Kvs = append(in.Kvs, &mvccpb.KeyValue{Key: key, Value: value, CreateRevision: rev - int64(i), ModRevision: int64(i), Version: int64(n), Lease: leaseid.New(int64(i)+rev&0xffff, uint64(rev)*uint64(i+1))})
		}
		raw, err := proto.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Own(raw, prefix)
		if err != nil {
			t.Fatalf("Own: %v", err)
		}
		want := proto.Clone(in).(*etcdserverpb.RangeResponse)
		want.Header = &etcdserverpb.ResponseHeader{Revision: rev}
		for _, kv := range want.Kvs {
			kv.Key = kv.Key[len(prefix):]
			kv.Lease = leaseid.TTL(kv.Lease)
		}
		var resp etcdserverpb.RangeResponse
		if err := proto.Unmarshal(got, &resp); err != nil {
			t.Fatalf("decoding the result: %v", err)
		}
		if !proto.Equal(&resp, want) {
			t.Fatalf("got %v\nwant %v", &resp, want)
		}

		// ... and the input itself, as an encoded response.
		out, err := Own(bytes.Clone(seed), prefix)
		if err != nil {
			return
		}
		if err := checkStripped(seed, out); err != nil {
			t.Fatal(err)
		}
	})
}

// checkStripped checks that out, which Own made of orig, decodes where orig
// does, and that every key in it is the key at the same place in orig with
// the prefix taken off.
func checkStripped(orig, out []byte) error {
	var a, b etcdserverpb.RangeResponse
	if proto.Unmarshal(orig, &a) != nil {
		return nil
	}
	if err := proto.Unmarshal(out, &b); err != nil {
		return fmt.Errorf("Own made %x of %x, which does not decode: %w", out, orig, err)
	}
	if len(a.Kvs) != len(b.Kvs) {
		return fmt.Errorf("%d keys in, %d out", len(a.Kvs), len(b.Kvs))
	}
	for i := range a.Kvs {
		if want := string(a.Kvs[i].Key); want != prefix+string(b.Kvs[i].Key) {
			return fmt.Errorf("key %d: %q from %q", i, b.Kvs[i].Key, want)
		}
	}
	return nil
}

func TestOwnRefusesAKeyValueWithoutOneKey(t *testing.T) {
	for _, kv := range [][]byte{
		{0x10, 0x01},                       // create_revision only
		{0x0a, 0x01, 'x', 0x0a, 0x01, 'y'}, // two keys
		{0x08, 0x05},                       // field 1 as a varint
	} {
		raw := append([]byte{0x12, byte(len(kv))}, kv...)
		if _, err := Own(raw, ""); err == nil {
			t.Errorf("Own(%x): no error", raw)
		}
	}
}
