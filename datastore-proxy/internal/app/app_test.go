package app

import "testing"

func TestDefaultWriteSlots(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		slots int
		want  int
	}{
		{"sqlite", 32, 1},
		{"", 32, 1},
		{"postgres", 32, 8},
		{"mysql", 32, 8},
		{"postgres", 4, 4}, // never more than --backend-slots
		{"etcd", 32, 32},
		{"etcd", 5, 5},
	} {
		if got := defaultWriteSlots(tc.kind, tc.slots); got != tc.want {
			t.Errorf("defaultWriteSlots(%q, %d) = %d, want %d", tc.kind, tc.slots, got, tc.want)
		}
	}
}
