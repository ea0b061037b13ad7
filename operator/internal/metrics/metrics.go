// Package metrics are the operator's Prometheus metrics (kplex_operator_*),
// registered with controller-runtime's registry so they are served on the
// manager's metrics endpoint beside controller-runtime's own.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kplex_operator_reconciles_total", Help: "VirtualCluster reconciles by result (ok, error).",
	}, []string{"result"})
	reconcileSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kplex_operator_reconcile_duration_seconds", Help: "Time of one VirtualCluster reconcile.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	stepSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kplex_operator_step_duration_seconds", Help: "Time of one reconcile step, by step and result.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"step", "result"})
	phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kplex_operator_tenant_phase", Help: "1 for each tenant's current phase.",
	}, []string{"tenant", "phase"})
)

func init() {
	crmetrics.Registry.MustRegister(reconciles, reconcileSeconds, stepSeconds, phase)
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Reconciles records one reconcile.
func Reconciles(start time.Time, err error) {
	reconciles.WithLabelValues(result(err)).Inc()
	reconcileSeconds.Observe(time.Since(start).Seconds())
}

// Step records one step.
func Step(name string, start time.Time, err error) {
	stepSeconds.WithLabelValues(name, result(err)).Observe(time.Since(start).Seconds())
}

// Phase records a tenant's phase.
func Phase(tenant, p string) {
	phase.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
	phase.WithLabelValues(tenant, p).Set(1)
}

// Forget drops a deleted tenant's series.
func Forget(tenant string) { phase.DeletePartialMatch(prometheus.Labels{"tenant": tenant}) }
