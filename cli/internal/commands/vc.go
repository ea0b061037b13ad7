package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"kplex.dev/api/v1alpha1"
	"kplex.dev/cli/vcluster"
)

// hostFlags are the flags of every VirtualCluster command.
type hostFlags struct {
	kubeconfig string
	namespace  string
}

func (h *hostFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&h.kubeconfig, "kubeconfig", "", "host cluster kubeconfig (default: $KUBECONFIG, else the local environment's <dir>/host/kubeconfig)")
	cmd.Flags().StringVarP(&h.namespace, "namespace", "n", "default", "host namespace of the VirtualCluster objects")
}

func (h *hostFlags) client(cmd *cobra.Command) (*vcluster.Client, error) {
	path, err := vcluster.HostKubeconfig(h.kubeconfig, dirFlag(cmd))
	if err != nil {
		return nil, err
	}
	return vcluster.New(path, h.namespace)
}

// completeNames completes VirtualCluster names.
func (h *hostFlags) completeNames(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := h.client(cmd)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	defer cancel()
	vcs, err := c.List(ctx, false)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, vc := range vcs {
		names = append(names, vc.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func newCreate() *cobra.Command {
	var (
		h       hostFlags
		file    string
		private string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a virtual cluster (a VirtualCluster object on the host)",
		Long: `Create a VirtualCluster; kplex-operator then makes its host namespace,
PKI, datastore tenant and control plane, and registers it with the syncer.

-f takes a VirtualCluster manifest (or only its spec; "-" reads stdin); NAME wins over the
manifest's name. Invalid specs are refused by the host API server with the
field at fault. --wait prints each step as it completes.

--private-nodes FILE runs the virtual cluster's workloads in another
cluster: its kubeconfig (current context, files inlined) goes to the Secret
NAME-private-nodes, owned by the VirtualCluster, which the spec then names
(spec.tenancy.privateNodes).`,
		Example: `  kplexctl create team-a --wait
  kplexctl create team-b -f team-b.yaml --wait --timeout 2m
  echo 'tenancy: {privateNodes: {kubeconfigSecret: other-cluster}}' | kplexctl create team-p -f -
  kplexctl create team-q --private-nodes other-cluster.kubeconfig --wait
  kplexctl connect team-a && kubectl --kubeconfig .kplex/vclusters/team-a/kubeconfig get ns`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			vc := &v1alpha1.VirtualCluster{}
			if file != "" {
				if err := readManifest(cmd.InOrStdin(), file, vc); err != nil {
					return err
				}
			}
			vc.Name, vc.Namespace = args[0], h.namespace
			c, err := h.client(cmd)
			if err != nil {
				return err
			}
			exists := func() error {
				return fmt.Errorf("virtual cluster %s already exists in namespace %s (`kplexctl describe %s`)", vc.Name, h.namespace, vc.Name)
			}
			if private != "" {
				if err := usePrivateNodes(cmd.Context(), c, vc, private); err != nil {
					if errors.Is(err, errExists) {
						return exists()
					}
					return err
				}
			}
			if err := c.Create(cmd.Context(), vc); err != nil {
				if private != "" && !apierrors.IsAlreadyExists(err) {
					c.DeletePrivateNodesSecret(cmd.Context(), vc.Name) // written for this create alone
				}
				if apierrors.IsAlreadyExists(err) {
					return exists()
				}
				return fmt.Errorf("create %s: %w", vc.Name, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "virtual cluster %s created in namespace %s\n", vc.Name, h.namespace)
			if private != "" {
				if err := c.OwnPrivateNodesSecret(cmd.Context(), vc); err != nil {
					return fmt.Errorf("%w (the Secret stays after the virtual cluster is deleted; delete it then)", err)
				}
			}
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			got, err := c.WaitReady(ctx, vc.Name, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "virtual cluster %s is Ready at %s\nget its kubeconfig: kplexctl connect %s\n", vc.Name, got.Status.Endpoint, vc.Name)
			return nil
		},
	}
	h.add(cmd)
	cmd.Flags().StringVarP(&file, "filename", "f", "", "VirtualCluster manifest (YAML or JSON), or a spec alone")
	cmd.Flags().StringVar(&private, "private-nodes", "", "kubeconfig FILE of another cluster to run the workloads in (stored in the Secret NAME-private-nodes)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until Ready, printing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

var errExists = errors.New("exists")

// usePrivateNodes stores the other cluster's kubeconfig in the Secret the
// spec then names. The Secret is written only for a VirtualCluster that
// does not exist yet, so an existing one's is never overwritten.
func usePrivateNodes(ctx context.Context, c *vcluster.Client, vc *v1alpha1.VirtualCluster, path string) error {
	if tn := vc.Spec.Tenancy; tn != nil && tn.PrivateNodes != nil {
		return fmt.Errorf("--private-nodes and the manifest's spec.tenancy.privateNodes: give one of them")
	}
	kc, err := vcluster.PrivateKubeconfig(path)
	if err != nil {
		return err
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: vc.Name}, &v1alpha1.VirtualCluster{}); err == nil {
		return errExists
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("create %s: %w", vc.Name, err)
	}
	if err := c.PutPrivateNodesSecret(ctx, vc.Name, kc); err != nil {
		return err
	}
	if vc.Spec.Tenancy == nil {
		vc.Spec.Tenancy = &v1alpha1.TenancySpec{}
	}
	vc.Spec.Tenancy.PrivateNodes = &v1alpha1.PrivateNodes{KubeconfigSecret: vcluster.PrivateNodesSecret(vc.Name)}
	return nil
}

// readManifest reads a VirtualCluster manifest, or a bare spec, from a
// file or ("-") stdin.
func readManifest(stdin io.Reader, path string, vc *v1alpha1.VirtualCluster) error {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("-f: %w", err)
	}
	var probe map[string]any
	if err := yaml.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("-f %s: %w", path, err)
	}
	if _, ok := probe["kind"]; ok {
		if err := yaml.UnmarshalStrict(b, vc); err != nil {
			return fmt.Errorf("-f %s: %w", path, err)
		}
		if vc.Kind != "VirtualCluster" {
			return fmt.Errorf("-f %s: kind %q: want VirtualCluster", path, vc.Kind)
		}
		return nil
	}
	if err := yaml.UnmarshalStrict(b, &vc.Spec); err != nil {
		return fmt.Errorf("-f %s (read as a VirtualCluster spec): %w", path, err)
	}
	return nil
}

func exactlyOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one virtual cluster NAME (`kplexctl list` shows them)", cmd.Name())
	}
	return nil
}

func newDelete() *cobra.Command {
	var (
		h       hostFlags
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a virtual cluster and everything kplex made for it",
		Long: `Delete a VirtualCluster. The operator stops its control plane, unregisters
it from the syncer, deletes its datastore keys and its host namespace (with
every host object in it), then the object goes. Nothing else is touched.`,
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
			if err := c.Delete(cmd.Context(), vc); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s: %w", vc.Name, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "virtual cluster %s is being deleted\n", vc.Name)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return c.WaitGone(ctx, vc.Name, out)
		},
	}
	h.add(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until everything is gone, printing progress")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

func newPause(pause bool) *cobra.Command {
	var h hostFlags
	use, short := "pause NAME", "Stop a virtual cluster's control plane and host pods, keeping all data"
	if !pause {
		use, short = "resume NAME", "Start a paused virtual cluster again, with all its data"
	}
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              exactlyOneName,
		ValidArgsFunction: h.completeNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := h.client(cmd)
			if err != nil {
				return err
			}
			if err := c.SetPaused(cmd.Context(), args[0], pause); err != nil {
				return err
			}
			verb := "pausing"
			if !pause {
				verb = "resuming"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s virtual cluster %s (`kplexctl list` shows its phase)\n", verb, args[0])
			return nil
		},
	}
	h.add(cmd)
	return cmd
}

func age(t metav1.Time) string {
	d := time.Since(t.Time)
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
