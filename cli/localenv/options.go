package localenv

import (
	"fmt"
	"io"
	"net/netip"

	"kplex.dev/cli/ports"
)

// Port roles. Each is a TCP port on 127.0.0.1.
const (
	PortEtcdClient        = "etcd-client"
	PortEtcdPeer          = "etcd-peer"
	PortHostAPIServer     = "host-apiserver"
	PortHostControllerMgr = "host-controller-manager"
	PortHostScheduler     = "host-scheduler"
	PortKWOK              = "kwok"
	PortDatastore         = "datastore-proxy"
	PortDatastoreMetrics  = "datastore-proxy-metrics"
	PortNATS              = "nats"
	PortNATSMetrics       = "nats-metrics"
	PortRelayMetrics      = "syncer-relay-metrics"
	PortShardMetrics      = "syncer-shard-metrics"
	PortOperatorMetrics   = "operator-metrics"
	PortOperatorHealth    = "operator-health"
)

// VClusterPortRoles are the ports each virtual cluster needs, prefixed with
// its name ("demo-apiserver").
var VClusterPortRoles = []string{"apiserver", "controller-manager"}

// DefaultPorts are chosen away from the usual 2379/6443/10257 so a local
// environment coexists with a real cluster on the same machine, and below
// Linux's ephemeral range (32768-60999), where an outgoing connection could
// take a server's port while it restarts.
func DefaultPorts(vclusters []string) ports.Set {
	s := ports.Set{
		PortEtcdClient:        22379,
		PortEtcdPeer:          22380,
		PortHostAPIServer:     26443,
		PortHostControllerMgr: 26257,
		PortHostScheduler:     26259,
		PortKWOK:              26247,
		PortDatastore:         23379,
		PortDatastoreMetrics:  23381,
		PortNATS:              24222,
		PortNATSMetrics:       24223,
		PortRelayMetrics:      24224,
		PortShardMetrics:      24225,
		PortOperatorMetrics:   24226,
		PortOperatorHealth:    24227,
	}
	for i, vc := range vclusters {
		for j, role := range VClusterPortRoles {
			s[vc+"-"+role] = 27443 + 10*i + j
		}
	}
	return s
}

// Options are the settings of `up`. Zero values mean the defaults.
type Options struct {
	Dir    string // environment root; default .kplex
	BinDir string // where kplex-apiserver, etcd, kwok... are; default bin
	// PortOverrides replace default ports by role; FreePorts picks any free
	// ports instead of the defaults (tests).
	PortOverrides ports.Set
	FreePorts     bool
	Nodes         int    // simulated nodes; default 3
	NodeKind      string // "kwok" (the only kind so far)
	PodCIDR       string // split into one /24 per node; default 10.244.0.0/16
	ServiceCIDR   string // host and tenant Service range; default 10.96.0.0/16
	VClusters     []string
	// HostOnly starts only the host cluster and its nodes, without the
	// kplex platform: another cluster, e.g. for a VirtualCluster's private
	// nodes. It has no virtual clusters.
	HostOnly bool
	// RegistryNamespace, when set, makes the operator keep registrations
	// in Secrets and the datastore limits in a ConfigMap of that host
	// namespace, as a platform in a cluster does, and the shard mirror
	// them (tests; the local proxy keeps its file's limits).
	RegistryNamespace string
	// OperatorArgs are appended to kplex-operator's flags (tests: e.g. the
	// kubernetes runtime, whose control-plane pods KWOK "runs").
	OperatorArgs []string
	// PortForwards make KWOK answer port-forwards to pods (through the
	// host API server, as a kubelet would) with a local port (tests).
	PortForwards []PortForward
	// DieWithParent ties every started process to the caller (tests).
	DieWithParent bool
	Progress      io.Writer // progress lines; default io.Discard
}

// PortForward sends port-forwards to Port of any pod in Namespace to
// 127.0.0.1:Target.
type PortForward struct {
	Namespace    string
	Port, Target int
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = ".kplex"
	}
	if o.BinDir == "" {
		o.BinDir = "bin"
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.NodeKind == "" {
		o.NodeKind = "kwok"
	}
	if o.PodCIDR == "" {
		o.PodCIDR = "10.244.0.0/16"
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = "10.96.0.0/16"
	}
	if o.VClusters == nil {
		o.VClusters = []string{"demo"}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func (o *Options) validate() error {
	if o.Nodes < 0 || o.Nodes > 256 {
		return fmt.Errorf("--nodes %d: want 0..256", o.Nodes)
	}
	if _, err := NodePodCIDRs(o.PodCIDR, o.Nodes); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(o.ServiceCIDR)
	if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
		return fmt.Errorf("--service-cidr %q: want an IPv4 prefix of /24 or larger", o.ServiceCIDR)
	}
	if o.HostOnly && len(o.VClusters) > 0 {
		return fmt.Errorf("a host-only environment has no virtual clusters (asked: %v)", o.VClusters)
	}
	for _, vc := range o.VClusters {
		if !validName(vc) {
			return fmt.Errorf("virtual cluster name %q: want a DNS label (lowercase letters, digits, '-'; at most 40 characters)", vc)
		}
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// NodePodCIDRs splits an IPv4 prefix (/16 to /24) into one /24 per node.
func NodePodCIDRs(cidr string, nodes int) ([]string, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("--pod-cidr %q: want an IPv4 prefix such as 10.244.0.0/16", cidr)
	}
	if p.Bits() > 24 || p.Bits() < 8 {
		return nil, fmt.Errorf("--pod-cidr %q: want a prefix between /8 and /24", cidr)
	}
	p = p.Masked()
	capacity := 1 << (24 - p.Bits())
	if nodes > capacity {
		return nil, fmt.Errorf("--pod-cidr %q holds %d /24 node ranges, %d nodes asked", cidr, capacity, nodes)
	}
	base := p.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8
	out := make([]string, nodes)
	for i := range nodes {
		v := start + uint32(i)<<8
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24).String()
	}
	return out, nil
}
