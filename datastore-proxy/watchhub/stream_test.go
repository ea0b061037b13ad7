package watchhub

import (
	"context"
	"errors"
	"io"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestRetriable(t *testing.T) {
	noLeader := rpctypes.ErrGRPCNoLeader
	for _, tc := range []struct {
		err            error
		leaderRequired bool
		want           codes.Code
		wantNoLeader   bool // clientv3 stops watching for good
	}{
		{io.EOF, false, codes.Unavailable, false},
		{context.Canceled, false, codes.Unavailable, false},
		{status.Error(codes.Canceled, "context canceled"), false, codes.Unavailable, false},
		{noLeader, true, codes.Unavailable, true},
		{noLeader, false, codes.Unavailable, false},
		{status.Error(codes.PermissionDenied, "no"), false, codes.PermissionDenied, false},
	} {
		got := retriable(tc.err, tc.leaderRequired)
		isNoLeader := errors.Is(rpctypes.Error(got), rpctypes.ErrNoLeader)
		if status.Code(got) != tc.want || isNoLeader != tc.wantNoLeader {
			t.Errorf("retriable(%v, leader required %v) is %v (no leader: %v), want %v (%v)", tc.err, tc.leaderRequired, got, isNoLeader, tc.want, tc.wantNoLeader)
		}
	}
}

func TestLeaderRequired(t *testing.T) {
	for _, tc := range []struct {
		md   metadata.MD
		want bool
	}{
		{nil, false},
		{metadata.Pairs(rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader), true},
		{metadata.Pairs(rpctypes.MetadataRequireLeaderKey, "false"), false},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), tc.md)
		if got := leaderRequired(ctx); got != tc.want {
			t.Errorf("leaderRequired(%v) = %v, want %v", tc.md, got, tc.want)
		}
	}
}

// A refusal the hub makes while a response of etcd is halfway through its
// fragments waits for the last one: etcd's client would take it for the
// start of a new response and drop the fragments it had.
func TestARefusalWaitsForTheLastFragment(t *testing.T) {
	h := New(Config{})
	s := &stream{ids: map[int64]int64{}}
	up := &upstream{streams: map[*stream]bool{s: true}, watches: map[int64]*route{7: {s: s, id: 3, done: func() {}}}}
	fragment := func(more bool) *etcdserverpb.WatchResponse {
		return &etcdserverpb.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 5}, WatchId: 7, Fragment: more,
			Events: []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 5}}}}
	}
	refusal := &etcdserverpb.WatchResponse{WatchId: clientv3.InvalidWatchID, Created: true, Canceled: true, CancelReason: "refused"}
	h.route(up, fragment(true))
	up.refuse(s, refusal)
	if len(s.out) != 1 {
		t.Fatalf("after the first fragment and a refusal: %d responses posted, want 1 (the refusal waits)", len(s.out))
	}
	h.route(up, fragment(false))
	if len(s.out) != 3 || !s.out[0].Fragment || s.out[1].Fragment || s.out[2] != refusal {
		t.Fatalf("after the last fragment: %v; want the two fragments, then the refusal", s.out)
	}
	up.refuse(s, refusal)
	if len(s.out) != 4 {
		t.Fatalf("a refusal with no fragment under way: %d responses posted, want 4", len(s.out))
	}
}
