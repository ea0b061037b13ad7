package ports

import (
	"encoding/binary"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
)

const sampleTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1001 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0500000A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 1004 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1005 1 0000000000000000 100 0 0 10 0
`

const sampleTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2003 1 0000000000000000 100 0 0 10 0
   3: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 06 00000000:00000000 03:00000F9A 00000000     0        0 0 3 0000000000000000
   4: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2005 1 0000000000000000 100 0 0 10 0
   5: B80D0120000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2006 1 0000000000000000 100 0 0 10 0
   6: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C351 01 00000000:00000000 00:00000000 00000000  1000        0 2007 1 0000000000000000 20 4 30 10 -1
`

const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func TestParseListenInodes(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("sample content is written for a little-endian host")
	}
	tests := []struct {
		name    string
		text    string
		port    int
		want    []uint64
		wantErr string
	}{
		{name: "ipv4 loopback and wildcard", text: sampleTCP, port: 8080, want: []uint64{1001, 1002}},
		{name: "ipv4 other port", text: sampleTCP, port: 8081, want: []uint64{1005}},
		{name: "ipv4 no listener", text: sampleTCP, port: 54321, want: nil},
		{name: "ipv6 loopback, wildcard, v4-mapped", text: sampleTCP6, port: 8080, want: []uint64{2001, 2002, 2003}},
		{name: "ipv6 other port", text: sampleTCP6, port: 80, want: []uint64{2005}},
		{name: "header only", text: header, port: 8080, want: nil},
		{name: "empty", text: "", port: 8080, want: nil},
		{
			name:    "too few fields",
			text:    header + "   0: 0100007F:1F90 00000000:0000 0A\n",
			port:    8080,
			wantErr: "too few fields",
		},
		{
			name:    "bad address",
			text:    header + "   0: 0100007Z:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 0 100 0 0 10 0\n",
			port:    8080,
			wantErr: "bad address",
		},
		{
			name:    "bad port",
			text:    header + "   0: 0100007F:XYZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 0 100 0 0 10 0\n",
			port:    8080,
			wantErr: "bad port",
		},
		{
			name:    "bad inode",
			text:    header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 x1 1 0 100 0 0 10 0\n",
			port:    8080,
			wantErr: "bad inode",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListenInodes(strings.NewReader(tt.text), tt.port)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("inodes = %v, want %v", got, tt.want)
			}
		})
	}
}

// readComm returns this process's comm name.
func readComm(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestOwnerFindsOwnListener(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port

			pid, name, err := Owner(port)
			if err != nil {
				t.Fatalf("Owner(%d): %v", port, err)
			}
			if pid != os.Getpid() {
				t.Errorf("Owner(%d) pid = %d, want %d", port, pid, os.Getpid())
			}
			if want := readComm(t); name != want {
				t.Errorf("Owner(%d) name = %q, want %q", port, name, want)
			}
		})
	}
}

func TestOwnerNoListener(t *testing.T) {
	free, err := Free(1)
	if err != nil {
		t.Fatal(err)
	}
	pid, name, err := Owner(free[0])
	if err != nil || pid != 0 || name != "" {
		t.Errorf("Owner(free port %d) = (%d, %q, %v), want (0, \"\", nil)", free[0], pid, name, err)
	}
}
