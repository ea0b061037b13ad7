// Command kplex-datastore-proxy is one etcd v3 endpoint for every tenant's
// kube-apiserver, on embedded SQLite, etcd, PostgreSQL or MySQL. See
// internal/app for the flags and the main flow.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"kplex.dev/datastore-proxy/internal/app"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "datastore-proxy")
	opts, err := app.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("bad flags", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal drains (app.Run); a second one ends the process at
	// once, as the signal's default does.
	context.AfterFunc(ctx, stop)
	if err := app.Run(ctx, opts, log); err != nil {
		log.Error("exiting", "err", err)
		os.Exit(1)
	}
}
