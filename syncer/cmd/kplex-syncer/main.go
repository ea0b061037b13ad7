// Command kplex-syncer runs the host relay, a syncer shard, both, or an
// embedded NATS server (local mode). See internal/app for the flags and
// the main flow.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"kplex.dev/syncer/internal/app"
)

func main() {
	// A shard's heap is mostly informer caches that change little: a lower
	// GC target than Go's 100 keeps its memory per synced pod down
	// (docs/benchmarks.md). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	opts, err := app.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "syncer", "mode", opts.Mode)
	if err != nil {
		log.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, opts, log); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
