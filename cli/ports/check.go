package ports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// InUseError reports a port that is already taken. PID is 0 and Process is
// empty when the owner is unknown.
type InUseError struct {
	// Name is the role name the port was wanted for.
	Name string
	// Port is the busy TCP port.
	Port int
	// PID is the process holding the port, or 0 if unknown.
	PID int
	// Process is the command name of PID, or "" if unknown.
	Process string
}

// Error implements error.
func (e *InUseError) Error() string {
	prefix := fmt.Sprintf("port %d (%s) is already in use", e.Port, e.Name)
	switch {
	case e.PID == 0:
		return prefix + " (no listener found: an outgoing connection may hold it, or its owner is not visible to this user)"
	case e.Process == "":
		return fmt.Sprintf("%s by pid %d", prefix, e.PID)
	default:
		return fmt.Sprintf("%s by pid %d (%s)", prefix, e.PID, e.Process)
	}
}

// Check tries to bind 127.0.0.1:<port> for every entry of s (closing the
// listener immediately). It returns an error joining (errors.Join) one
// *InUseError per busy port, sorted by name, or nil if all ports are free.
// Ports assigned to more than one name, out-of-range ports and other bind
// failures are reported in the joined error too.
func Check(s Set) error {
	var errs []error
	names := s.Names()

	byPort := make(map[int][]string, len(s))
	for _, name := range names {
		byPort[s[name]] = append(byPort[s[name]], name)
	}
	reported := make(map[int]bool)
	for _, name := range names {
		port := s[name]
		if dups := byPort[port]; len(dups) > 1 && !reported[port] {
			reported[port] = true
			errs = append(errs, fmt.Errorf("port %d is assigned to more than one server: %s",
				port, strings.Join(dups, ", ")))
		}
	}

	for _, name := range names {
		if err := checkOne(name, s[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkOne binds 127.0.0.1:port and closes it again.
func checkOne(name string, port int) error {
	if port < MinPort || port > MaxPort {
		return fmt.Errorf("port %d (%s) out of range %d..%d", port, name, MinPort, MaxPort)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d (%s): %w", port, name, err)
		}
		inUse := &InUseError{Name: name, Port: port}
		pid, proc, oerr := Owner(port)
		if oerr != nil {
			return errors.Join(inUse, fmt.Errorf("finding owner of port %d: %w", port, oerr))
		}
		inUse.PID, inUse.Process = pid, proc
		return inUse
	}
	if err := ln.Close(); err != nil {
		return fmt.Errorf("port %d (%s): closing test listener: %w", port, name, err)
	}
	return nil
}

// Free returns n distinct currently-free ports on 127.0.0.1, holding a
// listener on each until all are chosen. They are picked at random below
// the kernel's ephemeral range (net.ipv4.ip_local_port_range), never from
// it: a server restarted on an ephemeral port can find it taken by some
// outgoing connection in the meantime.
func Free(n int) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("free ports: negative count %d", n)
	}
	low, high := freeRange()
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n+100 {
			return nil, fmt.Errorf("free ports: found %d of %d free ports in %d..%d", len(ports), n, low, high)
		}
		port := low + rand.IntN(high-low)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken (or held by us already): try another
		}
		listeners = append(listeners, ln)
		ports = append(ports, port)
	}
	return ports, nil
}

// freeRange is where Free picks ports: from 10000 up to the start of the
// ephemeral range (32768 when it cannot be read).
func freeRange() (int, int) {
	const low = 10000
	high := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > low+1000 {
				high = v
			}
		}
	}
	return low, high
}
