package ports

import (
	"errors"
	"fmt"
	"net"
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
		return prefix + " (owner unknown: not visible to this user)"
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

// Free returns n distinct currently-free ports on 127.0.0.1. It binds
// 127.0.0.1:0 n times, holding all listeners until every port is chosen, then
// closes them. The ports may of course be taken by someone else afterwards.
func Free(n int) ([]int, error) {
	if n < 0 {
		return nil, fmt.Errorf("free ports: negative count %d", n)
	}
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free ports: %w", err)
		}
		listeners = append(listeners, ln)
		addr, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			return nil, fmt.Errorf("free ports: unexpected listener address %v", ln.Addr())
		}
		ports = append(ports, addr.Port)
	}
	return ports, nil
}
