package ports

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// tcpListen is the socket state code of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// Owner finds the process listening on 127.0.0.1:port or 0.0.0.0:port (or the
// IPv6 equivalents) using /proc/net/tcp, /proc/net/tcp6 and the
// /proc/<pid>/fd symlinks, and returns its pid and the name from
// /proc/<pid>/comm. It returns (0, "", nil) when no such listener is found or
// its owner is not visible to this user; an error means an unexpected I/O
// failure.
func Owner(port int) (pid int, name string, err error) {
	if port < MinPort || port > MaxPort {
		return 0, "", nil
	}
	inodes := make(map[uint64]bool)
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		found, err := listenInodesFile(path, port)
		if err != nil {
			return 0, "", err
		}
		for _, ino := range found {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return 0, "", nil
	}
	return findSocketOwner(inodes)
}

// listenInodesFile runs parseListenInodes on a file; a missing file (e.g.
// tcp6 with IPv6 disabled) yields no inodes.
func listenInodesFile(path string, port int) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading listeners: %w", err)
	}
	defer f.Close()
	inodes, err := parseListenInodes(f, port)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return inodes, nil
}

// parseListenInodes parses the text of /proc/net/tcp or /proc/net/tcp6 and
// returns the socket inodes of LISTEN sockets on port whose local address is
// loopback or unspecified (127.0.0.1, 0.0.0.0, ::1, ::, or v4-mapped forms).
// The first (header) line is skipped. Addresses are read in this machine's
// byte order, as the kernel prints them.
func parseListenInodes(r io.Reader, port int) ([]uint64, error) {
	var inodes []uint64
	sc := bufio.NewScanner(r)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if lineNo == 1 || line == "" {
			continue
		}
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
		fields := strings.Fields(line)
		if len(fields) < 10 {
			return nil, fmt.Errorf("line %d: too few fields: %q", lineNo, line)
		}
		if fields[3] != tcpListen {
			continue
		}
		addr, lport, err := parseHexAddrPort(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if lport != port {
			continue
		}
		addr = addr.Unmap()
		if !addr.IsLoopback() && !addr.IsUnspecified() {
			continue
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad inode %q: %w", lineNo, fields[9], err)
		}
		if ino != 0 {
			inodes = append(inodes, ino)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	return inodes, nil
}

// parseHexAddrPort parses a /proc/net/tcp{,6} address such as
// "0100007F:1F90": the address as 32-bit words in host byte order, then the
// port in hex.
func parseHexAddrPort(s string) (netip.Addr, int, error) {
	hexAddr, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q: missing ':'", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad port in %q: %w", s, err)
	}
	raw, err := hex.DecodeString(hexAddr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q: %w", s, err)
	}
	if len(raw) != 4 && len(raw) != 16 {
		return netip.Addr{}, 0, fmt.Errorf("bad address %q: %d bytes", s, len(raw))
	}
	// The kernel prints each 32-bit word of the network-order address as a
	// host integer; convert each word back to its in-memory bytes.
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr, int(port), nil
}

// findSocketOwner scans /proc/<pid>/fd for a link to "socket:[<inode>]" for
// any of inodes and returns the lowest such pid and its comm name.
// Processes that vanish or cannot be inspected are skipped.
func findSocketOwner(inodes map[uint64]bool) (int, string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, "", fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		if !holdsSocket(pid, inodes) {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if err != nil {
			// The owner exited or hid its name; the pid is still useful.
			return pid, "", nil
		}
		return pid, strings.TrimSpace(string(comm)), nil
	}
	return 0, "", nil
}

// holdsSocket reports whether process pid has an open fd for one of inodes.
func holdsSocket(pid int, inodes map[uint64]bool) bool {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false // exited, or not ours to look at
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue
		}
		num, ok := strings.CutPrefix(target, "socket:[")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, "]")
		if !ok {
			continue
		}
		if ino, err := strconv.ParseUint(num, 10, 64); err == nil && inodes[ino] {
			return true
		}
	}
	return false
}
