package watchhub

import (
	"context"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetriable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{io.EOF, codes.Unavailable},
		{context.Canceled, codes.Unavailable},
		{status.Error(codes.Canceled, "context canceled"), codes.Unavailable},
		{status.Error(codes.Unavailable, "etcdserver: no leader"), codes.Unavailable},
		{status.Error(codes.PermissionDenied, "no"), codes.PermissionDenied},
	} {
		if got := status.Code(retriable(tc.err)); got != tc.want {
			t.Errorf("retriable(%v) is %v, want %v", tc.err, got, tc.want)
		}
	}
}
