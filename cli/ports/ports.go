// Package ports handles the TCP ports of a local environment that runs many
// servers on 127.0.0.1: parsing user overrides, checking that ports are free,
// finding which process holds a busy port, and picking free ports.
package ports

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MinPort and MaxPort bound the valid TCP port numbers accepted by this package.
const (
	MinPort = 1
	MaxPort = 65535
)

// Set maps a server's role name (e.g. "etcd-client", "host-apiserver") to a
// TCP port on 127.0.0.1.
type Set map[string]int

// Names returns the role names of s, sorted.
func (s Set) Names() []string {
	names := make([]string, 0, len(s))
	for name := range s {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ParseOverrides parses "name=port" items (as given by a repeatable CLI flag)
// into a Set.
//
// It fails, naming the bad item, on a missing '=', an empty name, a
// non-numeric or out-of-range port (valid ports are 1..65535), a name not in
// known (the error lists the known names, sorted) and a name given twice.
func ParseOverrides(items []string, known []string) (Set, error) {
	knownSet := make(map[string]bool, len(known))
	for _, k := range known {
		knownSet[k] = true
	}
	s := make(Set, len(items))
	for _, item := range items {
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("port override %q: missing '=' (want name=port)", item)
		}
		if name == "" {
			return nil, fmt.Errorf("port override %q: empty name (want name=port)", item)
		}
		port, err := parsePort(value)
		if err != nil {
			return nil, fmt.Errorf("port override %q: %w", item, err)
		}
		if !knownSet[name] {
			sorted := slices.Clone(known)
			slices.Sort(sorted)
			return nil, fmt.Errorf("port override %q: unknown name %q (known: %s)",
				item, name, strings.Join(sorted, ", "))
		}
		if prev, dup := s[name]; dup {
			return nil, fmt.Errorf("port override %q: %q already set to %d", item, name, prev)
		}
		s[name] = port
	}
	return s, nil
}

// parsePort parses a decimal port number in MinPort..MaxPort.
func parsePort(value string) (int, error) {
	port, err := strconv.Atoi(value)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("port %q out of range %d..%d: %w", value, MinPort, MaxPort, err)
		}
		return 0, fmt.Errorf("port %q is not a number: %w", value, err)
	}
	if port < MinPort || port > MaxPort {
		return 0, fmt.Errorf("port %d out of range %d..%d", port, MinPort, MaxPort)
	}
	return port, nil
}
