package commands

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/vcluster"
)

func newList() *cobra.Command {
	var (
		h      hostFlags
		all    bool
		output string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List virtual clusters",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "yaml" {
				return fmt.Errorf("-o %q: want json or yaml (or nothing for a table)", output)
			}
			c, err := h.client(cmd)
			if err != nil {
				return err
			}
			vcs, err := c.List(cmd.Context(), all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output != "" {
				return printObject(out, output, &v1alpha1.VirtualClusterList{Items: vcs})
			}
			if len(vcs) == 0 {
				fmt.Fprintf(out, "no virtual clusters (create one: kplexctl create NAME --wait)\n")
				return nil
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAMESPACE\tNAME\tPHASE\tVERSION\tAGE\tPODS\tNODES\tSHARD")
			for _, vc := range vcs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", vc.Namespace, vc.Name, orDash(string(vc.Status.Phase)), orDash(vc.Spec.Version),
					age(vc.CreationTimestamp), vc.Status.Pods, vc.Status.Nodes, orDash(vc.Status.SyncerShard))
			}
			return w.Flush()
		},
	}
	h.add(cmd)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "every namespace")
	cmd.Flags().StringVarP(&output, "output", "o", "", "json or yaml (default: a table)")
	return cmd
}

func printObject(out interface{ Write([]byte) (int, error) }, format string, obj any) error {
	var b []byte
	var err error
	if format == "json" {
		b, err = json.MarshalIndent(obj, "", "  ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(obj)
	}
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

func newDescribe() *cobra.Command {
	var h hostFlags
	cmd := &cobra.Command{
		Use:               "describe NAME",
		Short:             "Show a virtual cluster's spec, conditions and recent events",
		Args:              exactlyOneName,
		ValidArgsFunction: h.completeNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := h.client(cmd)
			if err != nil {
				return err
			}
			vc, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Name:       %s\nNamespace:  %s\nPhase:      %s\nEndpoint:   %s\nKubeconfig: secret %s (kplexctl connect %s)\nPods:       %d\nNodes:      %d\nCreated:    %s ago\n",
				vc.Name, vc.Namespace, orDash(string(vc.Status.Phase)), orDash(vc.Status.Endpoint), orDash(vc.Status.AdminKubeconfigSecret), vc.Name,
				vc.Status.Pods, vc.Status.Nodes, age(vc.CreationTimestamp))
			spec, err := yaml.Marshal(vc.Spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nSpec:\n%s", indent(string(spec)))
			fmt.Fprintf(out, "\nConditions:\n")
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
			for _, cond := range vc.Status.Conditions {
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason, age(cond.LastTransitionTime), vcluster.FirstLine(cond.Message))
			}
			_ = w.Flush()
			evs, err := c.Events(cmd.Context(), vc)
			if err != nil {
				fmt.Fprintf(out, "\nEvents: cannot list: %v\n", err)
				return nil
			}
			fmt.Fprintf(out, "\nEvents:\n")
			if len(evs) == 0 {
				fmt.Fprintf(out, "  none\n")
			}
			if len(evs) > 15 {
				evs = evs[len(evs)-15:]
			}
			w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, e := range evs {
				fmt.Fprintf(w, "  %s\t%s\t%s\n", e.Type, e.Reason, vcluster.FirstLine(e.Message))
			}
			return w.Flush()
		},
	}
	h.add(cmd)
	return cmd
}

func newConnect() *cobra.Command {
	var (
		h           hostFlags
		print       bool
		output      string
		portForward bool
		localPort   int
	)
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Write (or print) a virtual cluster's admin kubeconfig",
		Long: `Fetch the admin kubeconfig the operator keeps for a virtual cluster and
write it to --output (default <dir>/vclusters/NAME/kubeconfig), or print it
with --print. Use it with KUBECONFIG=... or kubectl --kubeconfig.

With the operator's kubernetes runtime the kubeconfig names an address in
the host cluster; --port-forward reaches it from here: a local port on
127.0.0.1 forwarded through the host API server to a ready apiserver pod,
and a kubeconfig that uses it. It runs until Ctrl-C.`,
		Example: `  kplexctl connect team-a && export KUBECONFIG=.kplex/vclusters/team-a/kubeconfig
  kplexctl connect team-a --port-forward --local-port 16443`,
		Args:              exactlyOneName,
		ValidArgsFunction: h.completeNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := h.client(cmd)
			if err != nil {
				return err
			}
			var kc []byte
			var fw *vcluster.Forward
			if portForward {
				if localPort < 0 || localPort > 65535 {
					return fmt.Errorf("--local-port %d: want 0 (any free port) to 65535", localPort)
				}
				if fw, err = c.PortForward(cmd.Context(), args[0], localPort, cmd.ErrOrStderr()); err != nil {
					return err
				}
				kc = fw.Kubeconfig
			} else if kc, err = c.Kubeconfig(cmd.Context(), args[0]); err != nil {
				return err
			}
			if fw != nil {
				defer fmt.Fprintln(cmd.ErrOrStderr(), "port-forward stopped")
			}
			if print {
				if _, err := cmd.OutOrStdout().Write(kc); err != nil {
					return err
				}
			} else {
				path := output
				if path == "" {
					path = filepath.Join(dirFlag(cmd), "vclusters", args[0], "kubeconfig")
					if fw != nil {
						path = filepath.Join(dirFlag(cmd), "vclusters", args[0], "kubeconfig-port-forward")
					}
				}
				if err := writeKubeconfig(path, kc); err != nil {
					return err
				}
				abs, _ := filepath.Abs(path)
				fmt.Fprintf(cmd.OutOrStdout(), "export KUBECONFIG=%s\n", abs)
			}
			if fw == nil {
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "forwarding 127.0.0.1:%d to %s through the host API server; Ctrl-C to stop\n", fw.LocalPort, fw.Pod)
			if err := <-fw.Done; err != nil && cmd.Context().Err() == nil {
				return fmt.Errorf("port-forward to %s ended: %w (run connect again to pick another ready pod)", fw.Pod, err)
			}
			return nil
		},
	}
	h.add(cmd)
	cmd.Flags().BoolVar(&print, "print", false, "print the kubeconfig instead of writing it")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default <dir>/vclusters/NAME/kubeconfig, or kubeconfig-port-forward)")
	cmd.Flags().BoolVar(&portForward, "port-forward", false, "kubernetes runtime: forward a local port to an apiserver pod and use it (runs until Ctrl-C)")
	cmd.Flags().IntVar(&localPort, "local-port", 0, "with --port-forward: the local port (0: any free one)")
	return cmd
}

func writeKubeconfig(path string, kc []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, kc, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return os.Rename(tmp, path)
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
