package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"kplex.dev/cli/localenv"
)

func newStatus() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each process of the local environment and whether it is ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sts, err := localenv.Status(cmd.Context(), dirFlag(cmd))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(sts)
			case "", "table":
			default:
				return fmt.Errorf("--output %q: want table or json", output)
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATE\tPID\tPORTS\tREADY\tLOG")
			notReady := 0
			for _, s := range sts {
				ready := "yes"
				if !s.Ready {
					ready = "no"
					notReady++
					if s.Reason != "" {
						ready = "no: " + s.Reason
					}
				}
				pid := "-"
				if s.PID != 0 && s.State == "running" {
					pid = fmt.Sprint(s.PID)
				}
				ps := make([]string, len(s.Ports))
				for i, p := range s.Ports {
					ps[i] = fmt.Sprint(p)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, pid, strings.Join(ps, ","), ready, s.Log)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if notReady > 0 {
				return fmt.Errorf("%d of %d processes are not ready (see their logs; `kplexctl up` restarts what is down)", notReady, len(sts))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
