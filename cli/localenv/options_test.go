package localenv

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"kplex.dev/cli/ports"
	"kplex.dev/cli/supervise"
)

func TestNodePodCIDRs(t *testing.T) {
	tests := []struct {
		cidr    string
		nodes   int
		want    []string
		wantErr string
	}{
		{"10.244.0.0/16", 3, []string{"10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"}, ""},
		{"10.244.7.9/16", 1, []string{"10.244.0.0/24"}, ""}, // host bits are masked
		{"127.1.0.0/23", 2, []string{"127.1.0.0/24", "127.1.1.0/24"}, ""},
		{"10.0.0.0/8", 0, []string{}, ""},
		{"127.1.0.0/23", 3, nil, "holds 2 /24 node ranges, 3 nodes asked"},
		{"10.244.0.0/25", 1, nil, "between /8 and /24"},
		{"fd00::/64", 1, nil, "IPv4"},
		{"nonsense", 1, nil, "IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			got, err := NodePodCIDRs(tt.cidr, tt.nodes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"too many nodes", func(o *Options) { o.Nodes = 300 }, "--nodes 300"},
		{"bad service cidr", func(o *Options) { o.ServiceCIDR = "10.96.0.0/28" }, "--service-cidr"},
		{"uppercase vcluster", func(o *Options) { o.VClusters = []string{"Demo"} }, "DNS label"},
		{"vcluster with dot", func(o *Options) { o.VClusters = []string{"a.b"} }, "DNS label"},
		{"vcluster trailing dash", func(o *Options) { o.VClusters = []string{"a-"} }, "DNS label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			tt.mutate(&o)
			o.defaults()
			err := o.validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultPortsAreDistinct(t *testing.T) {
	s := DefaultPorts([]string{"a", "b", "c"})
	seen := map[int]string{}
	for name, p := range s {
		if other, dup := seen[p]; dup {
			t.Fatalf("port %d used by %s and %s", p, name, other)
		}
		seen[p] = name
	}
	if len(s) != 14+3*len(VClusterPortRoles) {
		t.Fatalf("got %d ports, want %d", len(s), 14+3*len(VClusterPortRoles))
	}
}

func TestAddNewPortsToAnOlderState(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	old := DefaultPorts([]string{"demo"})
	delete(old, PortNATS)
	delete(old, PortShardMetrics)
	old[PortHostAPIServer] = 6443 // a choice the user made stays
	st := &State{Nodes: 3, NodeKind: "kwok", VClusters: []string{"demo"}, Ports: old}
	if err := addNewPorts(l, st, Options{}); err != nil {
		t.Fatal(err)
	}
	if st.Ports[PortNATS] != DefaultPorts(nil)[PortNATS] || st.Ports[PortShardMetrics] != DefaultPorts(nil)[PortShardMetrics] || st.Ports[PortHostAPIServer] != 6443 {
		t.Fatalf("ports after adding the new ones: %v", st.Ports)
	}
	saved, err := LoadState(l)
	if err != nil || saved.Ports[PortNATS] == 0 {
		t.Fatalf("the added ports were not saved: %v %v", saved, err)
	}
}

func TestStateConflicts(t *testing.T) {
	st := &State{Nodes: 3, NodeKind: "kwok", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/16",
		VClusters: []string{"demo"}, Ports: ports.Set{"etcd-client": 1}}
	if err := conflicts(st, Options{}); err != nil {
		t.Fatalf("no explicit options must not conflict: %v", err)
	}
	if err := conflicts(st, Options{Nodes: 3, VClusters: []string{"demo"}}); err != nil {
		t.Fatalf("matching options must not conflict: %v", err)
	}
	err := conflicts(st, Options{Nodes: 5, PodCIDR: "10.1.0.0/16", PortOverrides: ports.Set{"etcd-client": 2}, HostOnly: true})
	for _, want := range []string{"--nodes 5", "--pod-cidr 10.1.0.0/16", "--port etcd-client=2", "--host-only"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("conflicts = %v, want it to mention %q", err, want)
		}
	}
}

func TestStateRoundTripAndCorruption(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	st := &State{Nodes: 2, NodeKind: "kwok", PodCIDR: "p", ServiceCIDR: "s", VClusters: []string{"x"}, Ports: ports.Set{"a": 1}}
	if err := st.Save(l); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(l)
	if err != nil || got.Nodes != 2 || got.Ports["a"] != 1 || got.VClusters[0] != "x" {
		t.Fatalf("LoadState = %+v, %v", got, err)
	}
	if err := os.WriteFile(l.State(), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(l); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt state: err = %v", err)
	}
}

// TestUpRefusesBusyPort starts nothing when a port is taken, and names the
// port and its owner (this test process).
func TestUpRefusesBusyPort(t *testing.T) {
	busy, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(busy[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	err = Up(t.Context(), Options{Dir: dir, BinDir: "/nonexistent", FreePorts: true,
		PortOverrides: ports.Set{PortEtcdClient: busy[0]}})
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "etcd-client") {
		t.Fatalf("err = %v, want the busy etcd-client port named", err)
	}
	if pids, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid")); len(pids) != 0 {
		t.Fatalf("processes were started despite the busy port: %v", pids)
	}
}

// TestDownStopsEveryPidFile stops processes it finds pid files for, even
// without a state file (a half-created environment).
func TestDownStopsEveryPidFile(t *testing.T) {
	dir := t.TempDir()
	l := Layout{Root: dir}
	var procs []*supervise.Process
	for _, name := range []string{"one", "two"} {
		p, err := supervise.Start(supervise.Spec{Name: name, Path: "/bin/sleep", Args: []string{"60"},
			LogPath: l.Log(name), PidPath: l.Pid(name), DieWithParent: true})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	var out strings.Builder
	if err := Down(dir, false, &out); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		select {
		case <-p.Exited():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still running after Down", p.Spec.Name)
		}
	}
	if !strings.Contains(out.String(), "stopped one") || !strings.Contains(out.String(), "stopped two") {
		t.Fatalf("Down output %q does not report both", out.String())
	}
	if err := Down(dir, true, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("--purge left %s: %v", dir, err)
	}
}

func listen(port int) (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
}

// TestPortForwardConfig: each forward is a KWOK ClusterPortForward for
// the namespace's pods.
func TestPortForwardConfig(t *testing.T) {
	if got := portForwardConfig(nil); len(got) != 0 {
		t.Errorf("no forwards: %q", got)
	}
	got := string(portForwardConfig([]PortForward{{Namespace: "kplex-a", Port: 6443, Target: 31000}, {Namespace: "kplex-b", Port: 443, Target: 31001}}))
	docs := strings.Split(strings.TrimPrefix(got, "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents:\n%s", len(docs), got)
	}
	for i, want := range []struct {
		ns           string
		port, target int
	}{{"kplex-a", 6443, 31000}, {"kplex-b", 443, 31001}} {
		var doc struct {
			Kind string `json:"kind"`
			Spec struct {
				Selector struct {
					MatchNamespaces []string `json:"matchNamespaces"`
				} `json:"selector"`
				Forwards []struct {
					Ports  []int `json:"ports"`
					Target struct {
						Address string `json:"address"`
						Port    int    `json:"port"`
					} `json:"target"`
				} `json:"forwards"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(docs[i]), &doc); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, docs[i])
		}
		f := doc.Spec.Forwards
		if doc.Kind != "ClusterPortForward" || len(doc.Spec.Selector.MatchNamespaces) != 1 || doc.Spec.Selector.MatchNamespaces[0] != want.ns ||
			len(f) != 1 || len(f[0].Ports) != 1 || f[0].Ports[0] != want.port || f[0].Target.Address != "127.0.0.1" || f[0].Target.Port != want.target {
			t.Errorf("document %d: %+v", i, doc)
		}
	}
}
