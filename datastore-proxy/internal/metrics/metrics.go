// Package metrics holds the proxy's Prometheus metrics and the gRPC
// interceptors that record them per tenant.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metrics are the proxy's per-tenant request metrics. The tenant label is
// bounded by the number of tenants (identity is a verified certificate).
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	streams  *prometheus.GaugeVec
	watches  *prometheus.CounterVec
	active   *prometheus.GaugeVec
	refused  *prometheus.CounterVec
	stalled  *prometheus.CounterVec
	slotWait *prometheus.HistogramVec
	tenantOf func(context.Context) (string, error)
}

// New registers the metrics. tenantOf names the caller's tenant.
func New(reg prometheus.Registerer, tenantOf func(context.Context) (string, error)) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_requests_total",
			Help: "etcd API requests by tenant, method and gRPC code; tenant \"(unauthenticated)\" for callers whose certificate names no tenant.",
		}, []string{"tenant", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kplex_datastore_proxy_request_duration_seconds",
			Help:    "etcd API request latency by tenant and method: unary calls until their answer is ready, a RangeStream (the lists of kube-apiserver v1.37) until its last chunk is sent.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"tenant", "method"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kplex_datastore_proxy_active_streams",
			Help: "Open streams (watches, lease keep-alives, RangeStreams) by tenant and method.",
		}, []string{"tenant", "method"}),
		watches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_watches_total",
			Help: "Watches started, by tenant (each on its own key range of the store).",
		}, []string{"tenant"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kplex_datastore_proxy_active_watches",
			Help: "Watches open, by tenant (a stream may carry many).",
		}, []string{"tenant"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_watches_refused_total",
			Help: "Watches refused because the tenant had its maxWatches open, by tenant.",
		}, []string{"tenant"}),
		stalled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_watch_streams_stalled_total",
			Help: "Watch streams on etcd ended because their client took no response for 10 s while the tenant had other watch streams (which it held up), by tenant.",
		}, []string{"tenant"}),
		slotWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kplex_datastore_proxy_slot_wait_seconds",
			Help:    "How long requests, and on SQL backends watches reading their history, waited for a backend slot (the fair share's queue: slots busy, the tenant at its --backend-tenant-share, or a flood held back by --backend-tenant-busy-share), by tenant and kind (read or write).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"tenant", "kind"}),
		tenantOf: tenantOf,
	}
	reg.MustRegister(m.requests, m.latency, m.streams, m.watches, m.active, m.refused, m.stalled, m.slotWait)
	return m
}

// Unauthenticated is the tenant label of requests from callers with no
// tenant: not a DNS label, so no tenant's name ("unauthenticated" is one).
const Unauthenticated = "(unauthenticated)"

func (m *Metrics) tenant(ctx context.Context) string {
	t, err := m.tenantOf(ctx)
	if err != nil {
		return Unauthenticated
	}
	return t
}

// Forget drops every series of tenant (server.Options.OnForget).
func (m *Metrics) Forget(tenant string) {
	l := prometheus.Labels{"tenant": tenant}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.streams.DeletePartialMatch(l)
	m.watches.DeletePartialMatch(l)
	m.active.DeletePartialMatch(l)
	m.refused.DeletePartialMatch(l)
	m.stalled.DeletePartialMatch(l)
	m.slotWait.DeletePartialMatch(l)
}

// Unary records unary requests.
func (m *Metrics) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	t := m.tenant(ctx)
	m.latency.WithLabelValues(t, info.FullMethod).Observe(time.Since(start).Seconds())
	m.requests.WithLabelValues(t, info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

// SlotWait records how long one of tenant's requests waited for a backend
// slot.
func (m *Metrics) SlotWait(tenant string, write bool, waited time.Duration) {
	kind := "read"
	if write {
		kind = "write"
	}
	m.slotWait.WithLabelValues(tenant, kind).Observe(waited.Seconds())
}

// Stream records streams. A RangeStream is a request in chunks, and its
// latency is recorded as a unary call's; a watch's or keep-alive's
// duration is how long it stayed open, which is not.
func (m *Metrics) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	t := m.tenant(ss.Context())
	g := m.streams.WithLabelValues(t, info.FullMethod)
	g.Inc()
	defer g.Dec()
	err := handler(srv, ss)
	if info.FullMethod == rangeStreamMethod {
		m.latency.WithLabelValues(t, info.FullMethod).Observe(time.Since(start).Seconds())
	}
	m.requests.WithLabelValues(t, info.FullMethod, status.Code(err).String()).Inc()
	return err
}

const rangeStreamMethod = "/etcdserverpb.KV/RangeStream"

// UsageCollector reports each tenant's stored keys and bytes.
type UsageCollector struct {
	usage        func() map[string][2]int64
	keys, nbytes *prometheus.Desc
}

// NewUsageCollector reads usage on every scrape.
func NewUsageCollector(usage func() map[string][2]int64) *UsageCollector {
	return &UsageCollector{
		usage:  usage,
		keys:   prometheus.NewDesc("kplex_datastore_proxy_tenant_keys", "Keys a tenant stores (counted at its first write, then kept).", []string{"tenant"}, nil),
		nbytes: prometheus.NewDesc("kplex_datastore_proxy_tenant_bytes", "Bytes (keys + values) a tenant stores.", []string{"tenant"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *UsageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.keys; ch <- c.nbytes }

// Collect implements prometheus.Collector.
func (c *UsageCollector) Collect(ch chan<- prometheus.Metric) {
	for tenant, u := range c.usage() {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, float64(u[0]), tenant)
		ch <- prometheus.MustNewConstMetric(c.nbytes, prometheus.GaugeValue, float64(u[1]), tenant)
	}
}

// Watch counts a watch a tenant started, open until done is called
// (server.Options.OnWatch).
func (m *Metrics) Watch(tenant string) (done func()) {
	m.watches.WithLabelValues(tenant).Inc()
	g := m.active.WithLabelValues(tenant)
	g.Inc()
	return g.Dec
}

// WatchRefused counts a watch refused for the tenant's maxWatches
// (server.Options.OnWatchRefused).
func (m *Metrics) WatchRefused(tenant string) {
	m.refused.WithLabelValues(tenant).Inc()
}

// WatchStreamStalled counts a watch stream ended for stalling
// (server.Options.OnWatchStreamStalled).
func (m *Metrics) WatchStreamStalled(tenant string) {
	m.stalled.WithLabelValues(tenant).Inc()
}
