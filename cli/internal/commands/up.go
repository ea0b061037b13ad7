package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

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
		Long: `Start the local environment: a host cluster with simulated nodes and
the virtual clusters (by default one, "demo").

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
  kplexctl up --free-ports --dir /tmp/kplex-test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Dir = dirFlag(cmd)
			if !cmd.Flags().Changed("bin-dir") {
				opts.BinDir = defaultBinDir()
			}
			if cmd.Flags().Changed("vcluster") {
				opts.VClusters = vclusters
			}
			known := localenv.DefaultPorts(vclustersOrDefault(opts.VClusters)).Names()
			var err error
			if opts.PortOverrides, err = ports.ParseOverrides(portFlags, known); err != nil {
				return fmt.Errorf("--port: %w", err)
			}
			opts.Progress = cmd.OutOrStdout()
			if err := localenv.Up(cmd.Context(), opts); err != nil {
				return err
			}
			printUsage(cmd, opts.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.BinDir, "bin-dir", "", "directory with kplex-apiserver, kplex-controller-manager, kplex-scheduler, etcd and kwok (default: kplexctl's own directory, as make build lays them out)")
	f.IntVar(&opts.Nodes, "nodes", 0, "number of simulated nodes (default 3 for a new environment)")
	f.StringVar(&opts.NodeKind, "node-kind", "", "node provider: "+strings.Join(localenv.NodeKinds, ", ")+" (default kwok)")
	f.StringVar(&opts.PodCIDR, "pod-cidr", "", "pod address range, split into one /24 per node (default 10.244.0.0/16)")
	f.StringVar(&opts.ServiceCIDR, "service-cidr", "", "Service ClusterIP range of the host and the virtual clusters (default 10.96.0.0/16)")
	f.StringArrayVar(&portFlags, "port", nil, "NAME=PORT to override a default port; names: "+strings.Join(localenv.DefaultPorts([]string{"demo"}).Names(), ", "))
	f.BoolVar(&opts.FreePorts, "free-ports", false, "pick free ports instead of the defaults (new environments only)")
	f.StringSliceVar(&vclusters, "vcluster", nil, "virtual clusters to run (default demo)")
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

func vclustersOrDefault(v []string) []string {
	if v == nil {
		return []string{"demo"}
	}
	return v
}

func printUsage(cmd *cobra.Command, dir string) {
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
	for _, vc := range st.VClusters {
		fmt.Fprintf(out, "virtual cluster: export KUBECONFIG=%s\n", abs(l.VClusterKubeconfig(vc)))
	}
}
