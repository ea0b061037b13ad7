package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
)

// A list served from etcd's undecoded answer (listRaw) is the answer kine's
// bridge gives for the same request over the same data: keys, values,
// revisions, count, more, header, errors, for every range shape a tenant
// can send, while another tenant's keys sit on either side.
func TestListRawAnswersAsTheBridge(t *testing.T) {
	url, stop, err := embedetcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	bctx, bcancel := context.WithCancel(ctx)
	t.Cleanup(func() { bcancel(); wg.Wait() })
	b, scheme, err := backend.Open(bctx, &wg, backend.Config{Kind: "etcd", DSN: url})
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, Options{Scheme: scheme})
	as := func(tenant string) context.Context {
		return context.WithValue(ctx, identityKey{}, identity{tenant: tenant})
	}
	alpha := as("alpha")

	// Tenants "a" and "alphb" sort around "alpha"; alpha has pods, a
	// compaction key (the apiserver's) and keys that end in odd bytes.
	for _, tenant := range []string{"a", "alphb", "alpha"} {
		for i := range 12 {
			key := fmt.Sprintf("/registry/pods/ns%d/p%02d", i%3, i)
			if _, err := s.Put(as(tenant), &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte(tenant + key)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, err := s.Range(alpha, &etcdserverpb.RangeRequest{Key: []byte("/registry/pods/ns0/p00")})
	if err != nil {
		t.Fatal(err)
	}
	older := first.Header.Revision
	for _, key := range []string{"\x00", "\xff\xff", "/registry/pods/ns1/p01", "z"} {
		if _, err := s.Put(alpha, &etcdserverpb.PutRequest{Key: []byte(key), Value: []byte("later " + key)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Txn(alpha, compactTxn(0)); err != nil {
		t.Fatalf("compaction key: %v", err)
	}
	st, err := s.tenant(alpha)
	if err != nil {
		t.Fatal(err)
	}
	pods, podsEnd := []byte("/registry/pods/"), []byte(clientv3.GetPrefixRangeEnd("/registry/pods/"))

	// The bridge serves what it refuses and what holds the compaction key.
	bridged := map[string]bool{"/\x00": true, "\x00\x00": true, "\x00\x00count": true, "\x00": true, "serializable": true, "sort": true}
	for _, r := range []*etcdserverpb.RangeRequest{
		{Key: pods, RangeEnd: podsEnd},
		{Key: pods, RangeEnd: podsEnd, Limit: 5},
		{Key: pods, RangeEnd: podsEnd, Limit: 12},
		{Key: pods, RangeEnd: podsEnd, Limit: 13},
		{Key: pods, RangeEnd: podsEnd, Limit: -1},
		{Key: pods, RangeEnd: podsEnd, KeysOnly: true, Limit: 2},
		{Key: pods, RangeEnd: podsEnd, CountOnly: true},
		{Key: pods, RangeEnd: podsEnd, Revision: older},
		{Key: pods, RangeEnd: podsEnd, Revision: older, Limit: 3},
		{Key: pods, RangeEnd: podsEnd, Revision: 1 << 40},
		{Key: []byte("/registry/pods/ns1/p04\x00"), RangeEnd: podsEnd, Limit: 2},
		{Key: []byte("/registry/pods/ns2/"), RangeEnd: []byte("/registry/pods/ns1/")},
		{Key: []byte("/"), RangeEnd: []byte("\x00")},
		{Key: []byte("z"), RangeEnd: []byte("\x00")},
		{Key: []byte("\x00"), RangeEnd: []byte("/registry/pods/ns1")},
		{Key: []byte("\x00"), RangeEnd: []byte("\x00")},
		{Key: []byte("\x00"), RangeEnd: []byte("\x00"), CountOnly: true},
		{Key: []byte{}, RangeEnd: []byte("\x00")},
		{Key: []byte("compact_rev_key"), RangeEnd: []byte("compact_rev_key\x00")},
		{Key: pods, RangeEnd: podsEnd, Serializable: true},
		{Key: pods, RangeEnd: podsEnd, SortOrder: etcdserverpb.RangeRequest_DESCEND},
	} {
		t.Run(fmt.Sprintf("%q-%q", r.Key, r.RangeEnd), func(t *testing.T) {
			raw, rawOK, rawErr := listRaw(alpha, st.backend, proto.Clone(r).(*etcdserverpb.RangeRequest))
			kine, kineErr := st.bridge.Range(alpha, proto.Clone(r).(*etcdserverpb.RangeRequest))
			name := string(r.Key) + string(r.RangeEnd)
			switch {
			case r.CountOnly && string(r.Key) == "\x00":
				name += "count"
			case r.Serializable:
				name = "serializable"
			case r.SortOrder != 0:
				name = "sort"
			}
			if rawOK == bridged[name] {
				t.Fatalf("listRaw served it: %v, want %v", rawOK, !bridged[name])
			}
			if !rawOK {
				return
			}
			if rawErr != nil || kineErr != nil {
				if status.Convert(rawErr).String() != status.Convert(kineErr).String() {
					t.Fatalf("listRaw: error %v; the bridge: %v", rawErr, kineErr)
				}
				return
			}
			// Both as the server's codec sends them and a client decodes them.
			got, want := sent(t, raw), sent(t, kine)
			if !proto.Equal(got, want) || !proto.Equal(want, kine) {
				t.Fatalf("request %v\nlistRaw:    %v\nthe bridge: %v (sent: %v)", r, got, kine, want)
			}
		})
	}
}

// sent is r encoded by the server's codec and decoded by a client.
func sent(t *testing.T, r *etcdserverpb.RangeResponse) *etcdserverpb.RangeResponse {
	t.Helper()
	enc, err := Codec{}.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out etcdserverpb.RangeResponse
	if err := proto.Unmarshal(enc.Materialize(), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// compactTxn is the transaction kube-apiserver writes its compaction
// revision with (k8s.io/apiserver storage/etcd3/compact.go).
func compactTxn(version int64) *etcdserverpb.TxnRequest {
	key := []byte(compactRevKey)
	return &etcdserverpb.TxnRequest{
		Compare: []*etcdserverpb.Compare{{
			Key: key, Target: etcdserverpb.Compare_VERSION, Result: etcdserverpb.Compare_EQUAL,
			TargetUnion: &etcdserverpb.Compare_Version{Version: version},
		}},
		Success: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestPut{
			RequestPut: &etcdserverpb.PutRequest{Key: key, Value: []byte("compact_rev_key")}}}},
		Failure: []*etcdserverpb.RequestOp{{Request: &etcdserverpb.RequestOp_RequestRange{
			RequestRange: &etcdserverpb.RangeRequest{Key: key}}}},
	}
}
