// Package app parses the proxy's flags and runs it: open the backend, serve
// the etcd API over mutual TLS, serve metrics and health, and shut down
// gracefully on SIGTERM.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/coalesce"
	"kplex.dev/datastore-proxy/internal/metrics"
	"kplex.dev/datastore-proxy/internal/tracing"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/server"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// Run serves until ctx is done, then drains.
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	// kine logs through logrus: keep it structured like ours, warnings up.
	logrus.SetFormatter(&logrus.JSONFormatter{})
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetOutput(os.Stderr)
	creds, err := serverTLS(o, log)
	if err != nil {
		return err
	}
	tc, err := tracing.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tracer, err := tracing.Start(ctx, tc, "kplex-datastore-proxy", func(err error) { log.Warn("tracing", "err", err) })
	if err != nil {
		return err
	}
	defer func() {
		// Spans still held are sent, or given up on, within a second.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := tracer.Shutdown(sctx); err != nil {
			log.Warn("stopping traces", "err", err)
		}
	}()
	if tc.On {
		log.Info("tracing calls: spans go to an OTLP collector", "endpoint", tc.Endpoint)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	o.Backend.Registerer = reg

	// Health and metrics come first, so a backend that is slow to come up
	// (a database still starting) shows as not ready rather than absent.
	mlis, err := net.Listen("tcp", o.MetricsAddress)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.MetricsAddress, err)
	}
	var ready atomic.Pointer[revisioner]
	var stopping atomic.Bool
	hs := &http.Server{Handler: healthMux(reg, &ready, &stopping, o.Profiling), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(mlis) }()
	defer hs.Close()

	limits := &tenantconfig.Store{}
	if o.TenantConfig != "" {
		reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_tenant_config_reloads_total",
			Help: "Reloads of the tenant config file by result.",
		}, []string{"result"})
		reg.MustRegister(reloads)
		err := limits.Watch(ctx, o.TenantConfig, 2*time.Second, log, func(err error) {
			if err != nil {
				reloads.WithLabelValues("error").Inc()
			} else {
				reloads.WithLabelValues("success").Inc()
			}
		})
		if err != nil {
			return err
		}
		log.Info("tenant config loaded", "path", o.TenantConfig)
	}

	bctx, stopBackend := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopBackend(); wg.Wait() }()
	log.Info("opening backend", "backend", o.Backend.Kind)
	abortOpen := context.AfterFunc(ctx, stopBackend) // SIGTERM while waiting for the database
	b, scheme, err := backend.Open(bctx, &wg, o.Backend)
	abortOpen()
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped while opening the backend", "err", err)
			return nil // asked to stop: not a failure
		}
		return err
	}
	var rv revisioner = b
	ready.Store(&rv)
	log.Info("backend open", "backend", o.Backend.Kind)

	if o.WriteSlots == 0 {
		o.WriteSlots = defaultWriteSlots(o.Backend.Kind, o.BackendSlots)
	}
	if o.TenantWrites < 0 {
		o.TenantWrites = defaultWriteShare(o.Backend.Kind)
	}
	if o.TenantBusy < 0 {
		o.TenantBusy = defaultBusyShare(o.Backend.Kind, o.WriteSlots)
	}
	quota.SetBackgroundScanRate(o.UsageScanRate)
	m := metrics.New(reg, server.TenantFromContext)
	srv := server.New(b, server.Options{Scheme: scheme, NotifyInterval: o.NotifyInterval, Limits: limits, BackendSlots: o.BackendSlots, WriteSlots: o.WriteSlots, TenantShare: o.TenantShare, TenantWriteShare: o.TenantWrites, TenantBusyShare: o.TenantBusy,
		OnWatch: m.Watch, OnWatchRefused: m.WatchRefused, OnSlotWait: m.SlotWait, WatchStallTimeout: o.WatchStall, ForgetIdle: o.ForgetIdle, OnForget: m.Forget,
		OnWatchStreamStalled: func(tenant string) {
			m.WatchStreamStalled(tenant)
			log.Warn("ended a watch stream whose client took no response, so that the tenant's other watch streams go on; its client watches again", "tenant", tenant, "after", o.WatchStall)
		}})
	reg.MustRegister(metrics.NewUsageCollector(srv.Usage))
	go srv.ForgetIdle(ctx)
	g := grpc.NewServer(append(append(serverOptions(o), tracer.ServerOptions()...),
		grpc.Creds(coalesce.Server(creds)), // a response's TLS records in one system call
		// Large enough for a list of 100 objects in one write (and so one
		// system call), shared between writes so that idle connections
		// hold none.
		grpc.WriteBufferSize(128<<10), grpc.SharedWriteBuffer(true),
		grpc.ChainUnaryInterceptor(server.IdentifyUnary, srv.TrackUnary, m.Unary, srv.Admit),
		grpc.ChainStreamInterceptor(server.IdentifyStream, srv.TrackStream, m.Stream),
		grpc.MaxRecvMsgSize(2<<20),
		grpc.ForceServerCodecV2(server.Codec{}), // lists sent as etcd encoded them (server/rawlist.go)
		// Reused handler goroutines keep their grown stacks: a new one per
		// request spent 7% of the proxy's CPU growing its stack (interceptors,
		// kine and the etcd client make deep calls). Long watch streams keep
		// their worker; when all are busy, requests get new goroutines.
		grpc.NumStreamWorkers(64),
		// Fixed flow-control windows turn off gRPC's bandwidth probing,
		// whose pings (and their acks) cost a write and a read on
		// connections that carry a request at a time, as a tenant's does:
		// a quarter fewer system calls per request with 10 or 100 tenants.
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(4<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)...)
	srv.Register(g)
	lis, err := net.Listen("tcp", o.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.ListenAddress, err)
	}
	go func() { errc <- g.Serve(lis) }()
	log.Info("serving", "etcd", lis.Addr().String(), "metrics", mlis.Addr().String())

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.Stop()
			_ = hs.Close()
			return fmt.Errorf("serve: %w", err)
		}
	}
	// Not ready first, so that no new client is sent here, and serving on
	// for --shutdown-delay while load balancers see it; then no new
	// connection or call is taken (gRPC sends its clients GOAWAY), every
	// watch stream is ended with Unavailable, which etcd's client answers
	// by watching again from its revision elsewhere or once the proxy is
	// back (server/drain.go), and the calls under way finish.
	stopping.Store(true)
	if o.ShutdownDelay > 0 {
		log.Info("shutting down: not ready, serving on while load balancers take the proxy out", "delay", o.ShutdownDelay)
		time.Sleep(o.ShutdownDelay)
	}
	log.Info("shutting down: draining requests and watches", "grace", o.ShutdownGrace)
	drained := make(chan struct{})
	go func() { g.GracefulStop(); close(drained) }()
	srv.Drain()
	select {
	case <-drained:
		log.Info("drained")
	case <-time.After(o.ShutdownGrace):
		log.Warn("calls still under way after the grace period: closing their connections", "grace", o.ShutdownGrace)
		g.Stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		// A scrape or a profile (/debug/pprof/profile: 30 s) still under
		// way: not a failed stop.
		log.Warn("closing the metrics server's requests still under way")
		return hs.Close()
	} else if err != nil {
		return fmt.Errorf("stop the metrics server: %w", err)
	}
	return nil
}

// defaultWriteSlots is how many writes run against a backend of kind at
// once unless --backend-write-slots says otherwise.
//
// SQLite has one writer: more would only queue in its lock, where the fair
// order is lost. On PostgreSQL, 32 writes at once (kine's inserts, each
// waiting for its commit) made the database slower for everyone: under a
// 64-writer flood, which runs alone on every slot until another tenant
// shows up, a quiet tenant's get p99 rose x12-x19 (x3.2 with 16 slots,
// x2.1 with 8, x1.4 with 2), and the proxy's own put throughput with 16
// clients was half of what 8 slots give (docs/benchmarks.md). MySQL
// (MariaDB) had PostgreSQL's 8 until session 20: against kine direct with
// as many clients, one tenant's puts were 74-83% on 8 slots and 97-104%
// on as many as --backend-slots, 100 tenants' 75-89% and 88-100%, and a
// quiet tenant's p99 under a flood no worse (get x1.1-x1.5, put x1.0-x1.3
// against x1.3-x1.5, x1.5-x1.8): what fewer slots once did for its
// fairness, defaultBusyShare does, at half a slot's time however many.
// etcd batches concurrent writes itself.
func defaultWriteSlots(kind string, backendSlots int) int {
	switch kind {
	case "sqlite", "":
		return 1
	case "postgres":
		return min(8, backendSlots)
	}
	return backendSlots
}

// defaultWriteShare is --backend-tenant-write-share unless set: how many
// writes one tenant runs at once while others are active.
//
// One was the default everywhere while the busy share was the only bound
// on a flood that also held back a tenant's second write: at two writes a
// tenant, a flood's quiet neighbour on etcd measured get x2.2-x3.4. Since
// the busy share holds back floods only (fairshare; session 22), two
// writes a tenant on etcd left the neighbour at get x1.0-x1.4, put
// x1.3-x1.7, and ten tenants' puts went from 81-84% of etcd direct's to
// 111-120%, watch events from 79-81% to 113-117%, put p99 from x1.0-x1.3
// to x0.9; on MySQL puts from 91% to 100%, watch events from 83% to 103%,
// the neighbour at x1.2. PostgreSQL's neighbour went from get x1.5 to
// x2.1 with its puts ahead of kine's either way (131-137%), so it keeps
// one; SQLite has one write slot.
func defaultWriteShare(kind string) int {
	switch kind {
	case "etcd", "mysql":
		return 2
	}
	return 1
}

// defaultBusyShare is --backend-tenant-busy-share unless set, for a
// backend of kind with writeSlots write slots.
//
// The share is of all slots' time, and bites only on a flooding tenant
// (more requests waiting than its cap lets run; fairshare). A flood runs
// at most --backend-tenant-write-share writes at once while others are
// active (one when these figures were taken, two on etcd and MySQL now):
// with 8 write slots, 0.25 (2 slots' time) never held it back. One write after another still cost a flood's
// quiet neighbour gets x2.5-x2.9 in p99 on MySQL (MariaDB), x1.7-x2.1 on
// PostgreSQL and x1.9-x2.4 on etcd (medians of 3 rounds; single rounds to
// x5.5); at half a write slot's time, x1.0-x1.5, x1.2-x1.9 and x0.9-x1.3,
// with the flood's own rate down a tenth or so (docs/benchmarks.md,
// sessions 15, 16, 21 and 22). Until session 22 the share also held back
// a tenant that merely kept a second write waiting behind its running
// one: with ten tenants, six with two writers, it cost MySQL's puts a
// quarter (so MySQL had three quarters of a slot) and etcd's a third (so
// etcd had 0.25, which never bit). Now those run as before and every
// backend with many write slots has half of one. SQLite's one write slot
// is all of its write time: at a quarter of it a quiet tenant's puts
// measured x1.9-x3.0 under a flood (x2.2-x3.0 at half), at an eighth
// x1.5-x2.1, at a sixteenth x0.7-x1.3 (gets x0.9-x1.5), with ten and a
// hundred tenants' rows unchanged (session 22). So SQLite's share is a
// sixteenth: while another tenant is busy (fairshare.BusyWindow), a flood
// gets that much of SQLite's write time. Until session 23 that was while
// another tenant was merely active (a request in the last 500 ms), and a
// virtual cluster's burst of writes beside another, nearly idle one ran at
// a sixteenth of SQLite's write rate: on CI its apiserver's writes timed
// out after a minute in the queue. On reads (32 slots, 2 per tenant while
// shared) the share holds back a tenant keeping more than 2 reads waiting:
// to half a slot's time on the backends with many write slots, to 2 slots'
// time on SQLite.
func defaultBusyShare(kind string, writeSlots int) float64 {
	switch {
	case kind == "sqlite" || kind == "":
		return 0.0625
	case writeSlots <= 0:
		return 0.25
	}
	return min(0.25, 0.5/float64(writeSlots))
}

type revisioner interface {
	CurrentRevision(context.Context) (int64, error)
}

// readyCheck asks b whether its store answers: with Ready where b has it
// (the SQL backends, whose CurrentRevision is kine's in memory), else with
// a read of its revision (etcd's is one).
func readyCheck(ctx context.Context, b revisioner) error {
	if r, ok := b.(interface{ Ready(context.Context) error }); ok {
		return r.Ready(ctx)
	}
	_, err := b.CurrentRevision(ctx)
	return err
}

func healthMux(reg *prometheus.Registry, ready *atomic.Pointer[revisioner], stopping *atomic.Bool, profiling bool) *http.ServeMux {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		b := ready.Load()
		if b == nil {
			http.Error(w, "backend: not open yet", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := readyCheck(ctx, *b); err != nil {
			http.Error(w, "backend: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	return mux
}

// serverOptions are the gRPC server options that flags choose.
func serverOptions(o Options) []grpc.ServerOption {
	var opts []grpc.ServerOption
	if o.MaxStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(min(o.MaxStreams, math.MaxUint32))))
	}
	return opts
}
