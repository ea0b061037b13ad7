package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/vcluster"

	"kplex.dev/cli/localenv"
	"kplex.dev/cli/ports"
)

func newUp() *cobra.Command {
	var (
		opts      localenv.Options
		portFlags []string
		vclusters []string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the local host cluster and its virtual clusters",
		Long: `Start the local environment: a host cluster with simulated nodes, the
shared platform (datastore-proxy, NATS, syncer relay and shard,
kplex-operator) and the virtual clusters (by default one, "demo", created
as a VirtualCluster and waited for).

With --host-only, only the host cluster and its simulated nodes: another
cluster on the same machine, e.g. for a VirtualCluster's private nodes
(spec.tenancy.privateNodes names a Secret holding its kubeconfig,
<dir>/host/kubeconfig).

Every process is started detached, logs to <dir>/logs/<name>.log and is
waited for until ready, with progress lines. Running it again is safe: what
already runs is reported and left alone, and processes that died (a crash, a
reboot) are restarted with their data.

The first run decides the ports, node count and address ranges and saves
them in <dir>/state.json; later runs reuse them. To change them, run
'kplexctl down --purge' first.`,
		Example: `  kplexctl up
  kplexctl up --nodes 5 --pod-cidr 127.1.0.0/16
  kplexctl up --port host-apiserver=6443 --port demo-apiserver=7443
  kplexctl up --free-ports --dir /tmp/kplex-test
  kplexctl up --host-only --free-ports --pod-cidr 10.245.0.0/16 --dir .kplex-private`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Dir = dirFlag(cmd)
			if !cmd.Flags().Changed("bin-dir") {
				opts.BinDir = defaultBinDir()
			}
			// Virtual clusters are VirtualClusters made by the operator. An
			// environment made by an older kplexctl runs its own as plain
			// processes (state.json lists them): those are kept as they are.
			l := localenv.Layout{Root: opts.Dir}
			var static []string
			if st, err := localenv.LoadState(l); err == nil {
				static = st.VClusters
			} else {
				opts.VClusters = []string{}
			}
			switch {
			case opts.HostOnly && len(vclusters) > 0:
				return fmt.Errorf("--host-only starts no kplex platform, so no --vcluster: drop one of them")
			case !cmd.Flags().Changed("vcluster"):
				vclusters = []string{"demo"}
			}
			known := localenv.DefaultPorts(static).Names()
			var err error
			if opts.PortOverrides, err = ports.ParseOverrides(portFlags, known); err != nil {
				return fmt.Errorf("--port: %w", err)
			}
			opts.Progress = cmd.OutOrStdout()
			if err := localenv.Up(cmd.Context(), opts); err != nil {
				return err
			}
			if st, err := localenv.LoadState(l); err == nil && st.HostOnly {
				vclusters = nil // no platform to make them
			}
			var made []string
			for _, vc := range vclusters {
				if slices.Contains(static, vc) {
					continue
				}
				if err := ensureVirtualCluster(cmd, l, vc); err != nil {
					return err
				}
				made = append(made, vc)
			}
			printUsage(cmd, opts.Dir, made)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.BinDir, "bin-dir", "", "directory with kplex-apiserver, kplex-controller-manager, kplex-scheduler, etcd and kwok (default: kplexctl's own directory, as make build lays them out)")
	f.IntVar(&opts.Nodes, "nodes", 0, "number of simulated nodes (default 3 for a new environment)")
	f.StringVar(&opts.NodeKind, "node-kind", "", "node provider: "+strings.Join(localenv.NodeKinds, ", ")+" (default kwok)")
	f.StringVar(&opts.PodCIDR, "pod-cidr", "", "pod address range, split into one /24 per node (default 10.244.0.0/16)")
	f.StringVar(&opts.ServiceCIDR, "service-cidr", "", "Service ClusterIP range of the host and the virtual clusters (default 10.96.0.0/16)")
	f.StringArrayVar(&portFlags, "port", nil, "NAME=PORT to override a default port; names: "+strings.Join(localenv.DefaultPorts(nil).Names(), ", "))
	f.BoolVar(&opts.FreePorts, "free-ports", false, "pick free ports instead of the defaults (new environments only)")
	f.BoolVar(&opts.HostOnly, "host-only", false, "start only a host cluster with simulated nodes, without the kplex platform (another cluster, e.g. for private nodes; new environments only)")
	f.StringSliceVar(&vclusters, "vcluster", nil, "VirtualClusters to create (through the operator) if they do not exist (default demo; none with --vcluster=\"\")")
	return cmd
}

// defaultBinDir is the directory kplexctl itself lives in: `make build`
// puts every binary in bin/ side by side.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

// ensureVirtualCluster creates the VirtualCluster unless it exists, waits
// until it is Ready (printing progress) and writes its admin kubeconfig to
// <dir>/vclusters/<name>/kubeconfig.
func ensureVirtualCluster(cmd *cobra.Command, l localenv.Layout, name string) error {
	c, err := vcluster.New(l.HostKubeconfig(), "default")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Minute)
	defer cancel()
	out := cmd.OutOrStdout()
	vc := &v1alpha1.VirtualCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if err := c.Create(ctx, vc); err == nil {
		fmt.Fprintf(out, "creating virtual cluster %s (a VirtualCluster in namespace default)\n", name)
	} else if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create virtual cluster %s: %w", name, err)
	}
	start := time.Now()
	if _, err := c.WaitReady(ctx, name, out); err != nil {
		return err
	}
	kc, err := c.Kubeconfig(ctx, name)
	if err != nil {
		return err
	}
	if err := writeKubeconfig(l.VClusterKubeconfig(name), kc); err != nil {
		return err
	}
	fmt.Fprintf(out, "virtual cluster %s ready (%.1fs)\n", name, time.Since(start).Seconds())
	return nil
}

func printUsage(cmd *cobra.Command, dir string, made []string) {
	st, err := localenv.LoadState(localenv.Layout{Root: dir})
	if err != nil {
		return
	}
	l := localenv.Layout{Root: dir}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "\nhost cluster:    export KUBECONFIG=%s\n", abs(l.HostKubeconfig()))
	for _, vc := range append(st.VClusters, made...) {
		fmt.Fprintf(out, "virtual cluster: export KUBECONFIG=%s\n", abs(l.VClusterKubeconfig(vc)))
	}
}
