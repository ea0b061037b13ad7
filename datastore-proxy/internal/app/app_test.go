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

func TestDefaultBusyShare(t *testing.T) {
	for kind, want := range map[string]float64{"mysql": 0.0625, "postgres": 0.25, "sqlite": 0.25, "": 0.25, "etcd": 0.25} {
		if got := defaultBusyShare(kind); got != want {
			t.Errorf("defaultBusyShare(%q) = %g, want %g", kind, got, want)
		}
	}
}
