// Command kplex-operator reconciles VirtualClusters on the host cluster.
// The flow: app.ParseFlags -> app.Run (manager, runtime, reconciler) ->
// controller.Reconciler.Reconcile for each VirtualCluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"kplex.dev/operator/internal/app"
)

func main() {
	opts, err := app.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kplex-operator: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "operator")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, opts, log); err != nil {
		log.Error("operator failed", "err", err)
		os.Exit(1)
	}
}
