package tenantbackend

import (
	"context"
	"errors"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maybeApplied tells whether a write that failed with err may still have
// been applied: its caller's deadline passed or the store went away after
// it was sent (an etcd batch goes on without the caller that gave up), or
// the store's error is not one that refuses the write before applying it
// (a database's commit that lost its connection). Such a write is counted
// as applied (quota.Usage.Unsure).
func maybeApplied(err error) bool {
	switch {
	case err == nil, errors.Is(err, server.ErrKeyExists), errors.Is(err, server.ErrCompacted), errors.Is(err, server.ErrFutureRev):
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	var code codes.Code
	var ee rpctypes.EtcdError
	switch s, ok := status.FromError(err); {
	case ok:
		code = s.Code()
	case errors.As(err, &ee):
		code = ee.Code() // etcd's error as its client hands it on
	default:
		return true // a database's own error: the commit may have gone through
	}
	switch code {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Unknown, codes.Internal, codes.Aborted, codes.DataLoss:
		return true
	}
	return false // refused as it came: invalid, too large, no space, no lease...
}
