package commands

import (
	"github.com/spf13/cobra"

	"kplex.dev/cli/localenv"
)

func newDown() *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local environment",
		Long: `Stop every process the local environment started (virtual clusters
first, then nodes and the host control plane), each with SIGTERM and, after
a grace period, SIGKILL. Data, certificates and logs stay in <dir> so the
next 'up' resumes where it left off; --purge removes them too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localenv.Down(dirFlag(cmd), purge, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the environment directory (data, certificates, logs)")
	return cmd
}
