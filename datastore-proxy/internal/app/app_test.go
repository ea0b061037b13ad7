package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDefaultWriteSlots(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		slots int
		want  int
	}{
		{"sqlite", 32, 1},
		{"", 32, 1},
		{"postgres", 32, 8},
		{"mysql", 32, 32},
		{"mysql", 5, 5},
		{"postgres", 4, 4}, // never more than --backend-slots
		{"etcd", 32, 32},
		{"etcd", 5, 5},
	} {
		if got := defaultWriteSlots(tc.kind, tc.slots); got != tc.want {
			t.Errorf("defaultWriteSlots(%q, %d) = %d, want %d", tc.kind, tc.slots, got, tc.want)
		}
	}
}

func TestDefaultWriteShare(t *testing.T) {
	for kind, want := range map[string]int{"etcd": 2, "mysql": 2, "postgres": 1, "sqlite": 1, "": 1} {
		if got := defaultWriteShare(kind); got != want {
			t.Errorf("defaultWriteShare(%q) = %d, want %d", kind, got, want)
		}
	}
}

func TestDefaultBusyShare(t *testing.T) {
	for _, tc := range []struct {
		kind       string
		writeSlots int
		want       float64
	}{
		{"mysql", 32, 0.015625}, // half a slot however many
		{"etcd", 32, 0.015625},
		{"postgres", 8, 0.0625},
		{"postgres", 4, 0.125}, // half a slot of fewer slots
		{"mysql", 1, 0.25},     // never more than 0.25
		{"sqlite", 1, 0.0625},  // a quarter of its one slot measured worse
		{"", 1, 0.0625},        // sqlite by default
		{"postgres", 0, 0.25},  // slots not known
	} {
		if got := defaultBusyShare(tc.kind, tc.writeSlots); got != tc.want {
			t.Errorf("defaultBusyShare(%q, %d) = %g, want %g", tc.kind, tc.writeSlots, got, tc.want)
		}
	}
}

// Bad values of the checked flags are refused with the flag's name; the
// required TLS flags are given.
func TestParseFlagsRefusesBadValues(t *testing.T) {
	tlsFlags := []string{"--tls-cert-file=c", "--tls-key-file=k", "--client-ca-file=ca"}
	for _, tc := range []struct {
		flag string
		want string // in the error; "" for none
	}{
		{"--datastore-keepalive-time=30s", ""},
		{"--datastore-keepalive-time=9s", "--datastore-keepalive-time"},
		{"--datastore-keepalive-time=0", ""},
		{"--datastore-keepalive-time=-1s", "--datastore-keepalive-time"},
		{"--datastore-keepalive-timeout=0", "--datastore-keepalive-timeout"},
		{"--datastore-keepalive-timeout=-1s", "--datastore-keepalive-timeout"},
		{"--usage-scan-rate=-1", "--usage-scan-rate"},
		{"--forget-idle-tenants=-1s", "--forget-idle-tenants"},
		{"--watch-stall-timeout=-1s", "--watch-stall-timeout"},
		{"--backend-slots=0", "--backend-slots"},
		{"--backend-slots=-1", "--backend-slots"},
		{"--backend-write-slots=0", ""},
		{"--backend-write-slots=-1", "--backend-write-slots"},
		{"--backend-tenant-share=0", ""},
		{"--backend-tenant-share=-1", "--backend-tenant-share"},
		{"--backend-tenant-write-share=-1", ""},
		{"--backend-tenant-write-share=-2", "--backend-tenant-write-share"},
		{"--backend-tenant-busy-share=-1", ""},
		{"--backend-tenant-busy-share=0", ""},
		{"--backend-tenant-busy-share=0.5", ""},
		{"--backend-tenant-busy-share=-0.5", "--backend-tenant-busy-share"},
		{"--backend-tenant-busy-share=1", "--backend-tenant-busy-share"},
		{"--backend-tenant-busy-share=NaN", "--backend-tenant-busy-share"},
		{"--compact-interval=-1s", "--compact-interval"},
		{"--compact-min-retain=-1", "--compact-min-retain"},
		{"--watch-progress-notify-interval=-1s", "--watch-progress-notify-interval"},
		{"--shutdown-grace=0", "--shutdown-grace"},
		{"--shutdown-grace=-1s", "--shutdown-grace"},
		{"--shutdown-delay=5s", ""},
		{"--shutdown-delay=-1s", "--shutdown-delay"},
	} {
		_, err := ParseFlags(append([]string{tc.flag}, tlsFlags...), io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.flag, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got error %v, want one naming %s", tc.flag, err, tc.want)
		}
	}
}

// /readyz answers 503 once the proxy is shutting down, whatever the
// backend, so that no new client is sent to it; /healthz stays ok.
func TestReadyzIsNotReadyWhileShuttingDown(t *testing.T) {
	var ready atomic.Pointer[revisioner]
	var stopping atomic.Bool
	mux := healthMux(prometheus.NewRegistry(), &ready, &stopping, false)
	get := func(path string) int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with no backend open: %d, want 503", code)
	}
	var b revisioner = answers{}
	ready.Store(&b)
	if code := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with the backend answering: %d, want 200", code)
	}
	stopping.Store(true)
	if code := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while shutting down: %d, want 503", code)
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while shutting down: %d, want 200", code)
	}
}

// answers is a backend that answers its revision.
type answers struct{}

func (answers) CurrentRevision(context.Context) (int64, error) { return 1, nil }
