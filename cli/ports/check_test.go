package ports

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// listen opens a listener on 127.0.0.1:0 that is closed when the test ends.
func listen(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// inUseErrors returns all *InUseError values joined in err, in order.
func inUseErrors(err error) []*InUseError {
	var out []*InUseError
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			var iu *InUseError
			if errors.As(e, &iu) {
				out = append(out, iu)
			}
		}
	}
	return out
}

func TestCheckFree(t *testing.T) {
	free, err := Free(3)
	if err != nil {
		t.Fatal(err)
	}
	s := Set{"etcd-client": free[0], "etcd-peer": free[1], "host-apiserver": free[2]}
	if err := Check(s); err != nil {
		t.Errorf("Check(%v) = %v, want nil", s, err)
	}
	if err := Check(Set{}); err != nil {
		t.Errorf("Check(empty) = %v, want nil", err)
	}
}

func TestCheckInUse(t *testing.T) {
	busy := listen(t)
	free, err := Free(1)
	if err != nil {
		t.Fatal(err)
	}
	err = Check(Set{"host-apiserver": busy, "etcd-client": free[0]})
	var iu *InUseError
	if !errors.As(err, &iu) {
		t.Fatalf("Check error %v: no *InUseError", err)
	}
	if iu.Name != "host-apiserver" || iu.Port != busy {
		t.Errorf("InUseError = %+v, want name host-apiserver port %d", iu, busy)
	}
	if iu.PID != os.Getpid() {
		t.Errorf("InUseError.PID = %d, want %d", iu.PID, os.Getpid())
	}
	if want := readComm(t); iu.Process != want {
		t.Errorf("InUseError.Process = %q, want %q", iu.Process, want)
	}
	if got := len(inUseErrors(err)); got != 1 {
		t.Errorf("got %d InUseErrors, want 1 (err: %v)", got, err)
	}
	if want := fmt.Sprintf("is already in use by pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestCheckInUseSortedByName(t *testing.T) {
	p1, p2, p3 := listen(t), listen(t), listen(t)
	err := Check(Set{"zulu": p1, "alpha": p2, "mike": p3})
	got := inUseErrors(err)
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "alpha,mike,zulu" {
		t.Errorf("InUseError names = %v, want [alpha mike zulu] (err: %v)", names, err)
	}
}

func TestCheckDuplicatePorts(t *testing.T) {
	free, err := Free(2)
	if err != nil {
		t.Fatal(err)
	}
	err = Check(Set{"bravo": free[0], "alpha": free[0], "charlie": free[1]})
	if err == nil {
		t.Fatal("Check with duplicate ports = nil, want error")
	}
	msg := err.Error()
	want := fmt.Sprintf("port %d is assigned to more than one server: alpha, bravo", free[0])
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not contain %q", msg, want)
	}
	if strings.Contains(msg, "charlie") {
		t.Errorf("error %q names charlie, whose port is unique", msg)
	}
	if n := len(inUseErrors(err)); n != 0 {
		t.Errorf("got %d InUseErrors for free ports, want 0", n)
	}
}

func TestCheckOutOfRange(t *testing.T) {
	err := Check(Set{"bad": 70000})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Check(port 70000) = %v, want out of range error", err)
	}
}

func TestInUseErrorMessage(t *testing.T) {
	tests := []struct {
		err  InUseError
		want string
	}{
		{
			InUseError{Name: "host-apiserver", Port: 36443, PID: 1234, Process: "etcd"},
			"port 36443 (host-apiserver) is already in use by pid 1234 (etcd)",
		},
		{
			InUseError{Name: "host-apiserver", Port: 36443, PID: 1234},
			"port 36443 (host-apiserver) is already in use by pid 1234",
		},
		{
			InUseError{Name: "etcd-client", Port: 2379},
			"port 2379 (etcd-client) is already in use (no listener found: an outgoing connection may hold it, or its owner is not visible to this user)",
		},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestFree(t *testing.T) {
	const n = 5
	ports, err := Free(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != n {
		t.Fatalf("Free(%d) returned %d ports", n, len(ports))
	}
	seen := make(map[int]bool)
	for _, p := range ports {
		if p < MinPort || p > MaxPort {
			t.Errorf("port %d out of range", p)
		}
		if seen[p] {
			t.Errorf("port %d returned twice: %v", p, ports)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d from Free is not bindable: %v", p, err)
			continue
		}
		ln.Close()
	}

	if got, err := Free(0); err != nil || len(got) != 0 {
		t.Errorf("Free(0) = %v, %v; want empty, nil", got, err)
	}
	if _, err := Free(-1); err == nil {
		t.Error("Free(-1) = nil error, want error")
	}
}

func TestFreeAvoidsEphemeralRange(t *testing.T) {
	low, high := freeRange()
	got, err := Free(20)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p < low || p >= high {
			t.Fatalf("port %d outside %d..%d (the ephemeral range starts at %d)", p, low, high-1, high)
		}
	}
}
