package tenantbackend

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A write is counted as maybe applied only when its error leaves that
// open: etcd's refusals, as its client hands them on (EtcdError, no gRPC
// status) as much as statuses, are not (they were: each started a recount,
// more load on an etcd already refusing for load).
func TestMaybeApplied(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{server.ErrKeyExists, false},
		{server.ErrCompacted, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("commit: %w", context.Canceled), true},
		{status.Error(codes.Unavailable, "connection reset"), true},
		{rpctypes.ErrGRPCNoSpace, false},
		{rpctypes.ErrNoSpace, false},
		{rpctypes.ErrTooManyRequests, false},
		{rpctypes.ErrLeaseNotFound, false},
		{rpctypes.ErrRequestTooLarge, false},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrLeaderChanged, true},
		{errors.New("driver: bad connection"), true},
	} {
		if got := maybeApplied(tc.err); got != tc.want {
			t.Errorf("maybeApplied(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
