// Package metrics are the syncer's Prometheus metrics (kplex_syncer_*),
// registered on the default registry.
package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	// SyncDuration is how long one reconcile of a virtual object took.
	SyncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kplex_syncer_sync_duration_seconds",
		Help:    "Time to reconcile one virtual object with the host, by tenant and resource.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"tenant", "resource"})
	// SyncLatency is the time from a virtual pod's creation to its host pod.
	SyncLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kplex_syncer_create_latency_seconds",
		Help:    "Time from a virtual object's creation until its host object was created, by tenant and resource.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"tenant", "resource"})
	// SyncErrors counts failed reconciles (retried with backoff).
	SyncErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_sync_errors_total",
		Help: "Reconciles that failed and were retried, by tenant and resource.",
	}, []string{"tenant", "resource"})
	// QueueDepth is each tenant's pending work.
	QueueDepth = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kplex_syncer_queue_depth",
		Help: "Virtual objects waiting to be reconciled, by tenant.",
	}, []string{"tenant"})
	// HostEvents counts host changes a shard received from the bus.
	HostEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_host_events_total",
		Help: "Host changes received from the bus, by tenant and resource.",
	}, []string{"tenant", "resource"})
	// PolicyDenied counts tenant pods refused by the host policy.
	PolicyDenied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_policy_denied_total",
		Help: "Tenant pods refused by the host pod security policy, by tenant.",
	}, []string{"tenant"})
	// PatrolRepairs counts host objects the drift patrol repaired.
	PatrolRepairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_patrol_repairs_total",
		Help: "Host objects the drift patrol found changed, missing or orphaned and repaired, by tenant and resource.",
	}, []string{"tenant", "resource"})
	// Owned is 1 for each tenant this shard holds the lease of.
	Owned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kplex_syncer_owned_tenant",
		Help: "1 for each tenant this shard owns (holds the lease of), with the lease's epoch.",
	}, []string{"tenant", "epoch"})
	// FencedWrites counts writes refused because the lease was not valid.
	FencedWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_fenced_writes_total",
		Help: "Writes refused, unsent, because this shard's lease on the tenant was not valid.",
	}, []string{"tenant"})
	// Tenants is the number of tenants this shard serves.
	Tenants = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kplex_syncer_tenants",
		Help: "Tenants served by this shard.",
	})
	// RelayPublished counts host changes the relay published.
	RelayPublished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_relay_published_total",
		Help: "Host changes published to the bus by the relay, by resource and type.",
	}, []string{"resource", "type"})
	// RelayErrors counts failed publishes (retried).
	RelayErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_relay_publish_errors_total",
		Help: "Failed publishes of host changes (retried with backoff), by resource.",
	}, []string{"resource"})
	// RelayEventsDropped counts host Events the relay gave up on.
	RelayEventsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_syncer_relay_events_dropped_total",
		Help: "Host Events not published because the object they are about never reached the relay's cache in time (object-not-cached) or too many waited (too-many-waiting).",
	}, []string{"reason"})
)

func init() {
	prometheus.MustRegister(SyncDuration, SyncLatency, SyncErrors, QueueDepth, HostEvents, PolicyDenied, PatrolRepairs, Owned, FencedWrites, Tenants, RelayPublished, RelayErrors, RelayEventsDropped)
}
