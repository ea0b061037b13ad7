package leaseid

import (
	"math"
	"testing"
)

func TestNewAndTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl    int64
		random uint64
	}{
		{1, 0},
		{1, math.MaxUint64},
		{3600, 0x1234_5678_9abc_def0},
		{9_000_000_000, math.MaxUint64},
		{1<<TTLBits - 1, 1},
	} {
		id := New(tc.ttl, tc.random)
		if id <= 0 {
			t.Errorf("New(%d, %#x) = %d, want a positive ID", tc.ttl, tc.random, id)
		}
		if got := TTL(id); got != tc.ttl {
			t.Errorf("TTL(New(%d, %#x)) = %d", tc.ttl, tc.random, got)
		}
	}
	// The random bits make different IDs for one TTL.
	if New(60, 1<<40) == New(60, 2<<40) {
		t.Error("New(60, 1<<40) == New(60, 2<<40)")
	}
}
