// Package commands holds kplexctl's cobra commands, one file per command.
package commands

import (
	"github.com/spf13/cobra"
)

// NewRoot builds the kplexctl command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "kplexctl",
		Short: "Run many virtual Kubernetes clusters on one host cluster",
		Long: `kplexctl manages kplex virtual clusters and the local environment.

The local environment is a host cluster (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and simulated KWOK nodes) plus
virtual clusters, all as processes on this machine with every file under
one directory (.kplex by default):

  kplexctl up        start it (or report what already runs)
  kplexctl status    show every process, its ports and readiness
  kplexctl down      stop every process it started

Virtual clusters are VirtualCluster objects on a host cluster (the local
one by default), reconciled by kplex-operator:

  kplexctl create NAME --wait     create one, printing progress
  kplexctl list                   list them (-o json|yaml)
  kplexctl describe NAME          spec, conditions, recent events
  kplexctl connect NAME           write its admin kubeconfig
  kplexctl pause|resume NAME      stop/start it, keeping all data
  kplexctl delete NAME --wait     remove it and everything kplex made for it

Shell completion: kplexctl completion bash|zsh|fish --help`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("dir", ".kplex", "directory holding the local environment's state, certificates, data and logs")
	root.AddCommand(newUp(), newDown(), newStatus(),
		newCreate(), newList(), newDescribe(), newConnect(), newDelete(), newPause(true), newPause(false))
	return root
}

func dirFlag(cmd *cobra.Command) string {
	d, _ := cmd.Flags().GetString("dir")
	return d
}
