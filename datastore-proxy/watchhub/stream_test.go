package watchhub

import (
	"context"
	"errors"
	"io"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
