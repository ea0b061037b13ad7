package etcdbackend

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

func TestReuseWindow(t *testing.T) {
	for _, tc := range []struct {
		ttl  int64
		want time.Duration
	}{
		{1, 50 * time.Millisecond},
		{60, 3 * time.Second},
		{3600, time.Minute}, // 5% would be 3 minutes
		{maxLeaseTTL, time.Minute},
	} {
		if got := reuseWindow(tc.ttl); got != tc.want {
			t.Errorf("reuseWindow(%d) = %v, want %v", tc.ttl, got, tc.want)
		}
	}
}

// A TTL past etcd's longest lease (a real lease ID sent where kine takes
// a TTL, say) is refused with etcd's error, without asking etcd.
func TestLeaseTTLTooLarge(t *testing.T) {
	l := newLeaseCache(nil) // a request to etcd would panic
	for _, ttl := range []int64{maxLeaseTTL + 1, 0x694d9a4b2c5e1f07} {
		if _, err := l.get(context.Background(), ttl); !errors.Is(err, rpctypes.ErrGRPCLeaseTTLTooLarge) {
			t.Errorf("ttl %d: err = %v, want %v", ttl, err, rpctypes.ErrGRPCLeaseTTLTooLarge)
		}
	}
}
