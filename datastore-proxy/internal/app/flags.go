package app

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/quota"
)

// Options are the proxy's settings.
type Options struct {
	ListenAddress  string
	MetricsAddress string
	Profiling      bool
	TLSCertFile    string
	TLSKeyFile     string
	ClientCAFile   string
	Backend        backend.Config
	NotifyInterval time.Duration
	ShutdownGrace  time.Duration
	ShutdownDelay  time.Duration
	TenantConfig   string
	BackendSlots   int
	WriteSlots     int
	TenantShare    int
	TenantWrites   int
	TenantBusy     float64
	UsageScanRate  int
	MaxStreams     uint
	// WatchStall is how long a tenant's watch stream may take no
	// response while the tenant has another, before it is ended.
	WatchStall time.Duration
	// ForgetIdle is how long a tenant may be idle before the proxy forgets
	// what it keeps of it (server.Options.ForgetIdle).
	ForgetIdle time.Duration
}

// ParseFlags reads the command line.
func ParseFlags(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("kplex-datastore-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `kplex-datastore-proxy serves the etcd v3 API to every tenant's kube-apiserver
from one shared store. The tenant is the CN of the client certificate (signed
by --client-ca-file); each tenant sees only the keys under /kplex/<tenant>/.

A tenant apiserver needs nothing but:
  --etcd-servers=https://<listen-address> --etcd-cafile=<CA of the serving cert>
  --etcd-certfile/--etcd-keyfile=<client cert with CN=<tenant>>

Traces go to an OTLP collector over gRPC when OTEL_EXPORTER_OTLP_ENDPOINT
(or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is its URL, http://host:4317 in plain
text or https://host:4317, or when OTEL_TRACES_EXPORTER=otlp (then
http://localhost:4317); the standard OTEL_* variables set the sampler,
headers, TLS and service name. Unset, or with OTEL_SDK_DISABLED=true or
OTEL_TRACES_EXPORTER=none, no call is traced. Another exporter, OTLP over
HTTP or an endpoint that is not such a URL is refused at start.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.ListenAddress, "listen-address", "127.0.0.1:2379", "host:port of the etcd API (gRPC over mutual TLS)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", "127.0.0.1:2381", "host:port of /metrics, /healthz and /readyz (plain HTTP)")
	fs.BoolVar(&o.Profiling, "profiling", false, "serve Go profiles at /debug/pprof/ on --metrics-address")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serving certificate (required)")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", "", "serving key (required)")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", "", "CA that signs tenants' client certificates (required)")
	fs.StringVar(&o.Backend.Kind, "backend", "sqlite", "shared store: "+strings.Join(backend.Kinds, ", "))
	fs.StringVar(&o.Backend.DSN, "datastore-endpoint", "", "etcd: comma-separated https:// URLs; postgres:// or mysql:// URL; sqlite: a file path (default <data-dir>/state.db)")
	fs.StringVar(&o.Backend.DataDir, "data-dir", "", "directory of the embedded sqlite database")
	fs.StringVar(&o.Backend.CAFile, "datastore-cafile", "", "etcd backend: CA of the etcd cluster's serving certificates")
	fs.StringVar(&o.Backend.CertFile, "datastore-certfile", "", "etcd backend: client certificate")
	fs.StringVar(&o.Backend.KeyFile, "datastore-keyfile", "", "etcd backend: client key")
	fs.DurationVar(&o.Backend.KeepaliveTimeout, "datastore-keepalive-timeout", 10*time.Second, "etcd, postgres and mysql backends: how long a connection to the store may keep data unacknowledged (TCP_USER_TIMEOUT), or on etcd a ping unanswered (--datastore-keepalive-time), before the proxy closes it and dials again (on etcd another endpoint, if there are several): a store whose host is lost or cut off holds calls and watches no longer")
	fs.DurationVar(&o.Backend.KeepaliveTime, "datastore-keepalive-time", 30*time.Second, "etcd backend: ping etcd after this long without a byte from it (at least 10s; kube-apiserver's own for its etcd), which also finds a member that stopped answering while its host still acknowledges; 0: off")
	fs.DurationVar(&o.Backend.CompactInterval, "compact-interval", 5*time.Minute, "how often the shared history is compacted, each time to the revision current an interval before, so that at least an interval of history is kept (as kube-apiserver compacts its etcd, and kine its database): tenants' watches that resume within it, and usage recounts shorter than it, find their revision")
	fs.Int64Var(&o.Backend.CompactMinRetain, "compact-min-retain", 1000, "revisions of history compaction keeps at the least, whatever the interval")
	fs.DurationVar(&o.NotifyInterval, "watch-progress-notify-interval", 5*time.Second, "how often idle watches get progress notifications on the SQL backends (on etcd, etcd's own --experimental-watch-progress-notify-interval)")
	fs.StringVar(&o.TenantConfig, "tenant-config", "", "YAML/JSON file of per-tenant limits (maxKeys, maxBytes, requestsPerSecond, burst, maxWatches; defaults: and tenants:), reloaded when it changes")
	fs.IntVar(&o.BackendSlots, "backend-slots", 32, "reads run against the backend at once; a freed slot goes to the waiting tenant served least recently")
	fs.IntVar(&o.TenantShare, "backend-tenant-share", 2, "while several tenants are active, how many reads each may run at once (0: no cap); a tenant alone uses every slot")
	fs.IntVar(&o.TenantWrites, "backend-tenant-write-share", -1, "the same for writes (0: --backend-tenant-share); on etcd every write in flight delays other tenants' reads until its disk sync; -1: the backend's default, 2 on etcd and mysql, 1 on postgres and sqlite")
	fs.Float64Var(&o.TenantBusy, "backend-tenant-busy-share", -1, "while another tenant is busy (has requests running or waiting, or had one done in the last 20 ms), the share (0-1) of the backend slots' time a flooding tenant (more requests waiting than --backend-tenant-share or --backend-tenant-write-share lets run) may use, so that its neighbours find the backend and the proxy's CPU with room; 0: no bound; -1: the backend's default, half a write slot's time on postgres, mysql and etcd (0.0625 of postgres' 8 slots, 0.015625 of 32; at most 0.25), 0.0625 of sqlite's one write slot")
	fs.IntVar(&o.WriteSlots, "backend-write-slots", 0, "writes run against the backend at once, shared as reads are (default: 1 for sqlite, which has one writer; 8 for postgres; --backend-slots for mysql and etcd)")
	fs.IntVar(&o.UsageScanRate, "usage-scan-rate", quota.DefaultBackgroundScanRate, "bytes per second that the background recounts of tenants' keys and bytes read from the backend, all tenants together (a tenant's count is then refreshed every 2 minutes or as this rate allows); 0: no bound")
	fs.DurationVar(&o.ForgetIdle, "forget-idle-tenants", 10*time.Minute, "how long a tenant may go without a request or an open stream before the proxy forgets what it keeps of it: its metric series (a deleted tenant's stop showing) and its rate limiter; its key and byte counts stay a day longer, after which its next write with limits waits for a new count; 0: never")
	fs.DurationVar(&o.WatchStall, "watch-stall-timeout", 10*time.Second, "how long a tenant's watch stream may take no response while the tenant has other watch streams before it is ended (its client watches again from where it was); until then the tenant's other streams wait, as every stream of a tenant shares one watch stream on the store; 0: never end one")
	fs.UintVar(&o.MaxStreams, "max-concurrent-streams", 0, "requests and streams one client connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a gRPC client past it waits before sending (one that ignores it has its new streams refused), so that the proxy holds at most this many of a connection's requests in memory; a tenant with several connections holds as many times that. Long-lived watch streams count, and a tenant's apiserver keeps about one open per resource it watches: set it well above the most any tenant has open (kplex_datastore_proxy_active_streams counts them by tenant), or its requests stall; 0: no bound, as etcd")
	fs.DurationVar(&o.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long the requests under way may take to finish on SIGTERM, once watch streams are ended (Unavailable: etcd's client watches again from its revision)")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay", 0, "how long the proxy serves on after SIGTERM with /readyz answering 503, before it drains: time for load balancers and a Service's endpoints to take it out (a pod's terminationGracePeriodSeconds should cover this and --shutdown-grace); a second SIGTERM ends it at once")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.UsageScanRate < 0 {
		return o, fmt.Errorf("--usage-scan-rate: want bytes per second, 0 for no bound; got %d", o.UsageScanRate)
	}
	if o.ForgetIdle < 0 {
		return o, fmt.Errorf("--forget-idle-tenants: want a duration, 0 for never; got %s", o.ForgetIdle)
	}
	if o.Backend.KeepaliveTime != 0 && o.Backend.KeepaliveTime < 10*time.Second {
		return o, fmt.Errorf("--datastore-keepalive-time: want 10s or more (gRPC's least), or 0 for off; got %s", o.Backend.KeepaliveTime)
	}
	if o.Backend.KeepaliveTimeout <= 0 {
		return o, fmt.Errorf("--datastore-keepalive-timeout: want a positive duration; got %s", o.Backend.KeepaliveTimeout)
	}
	if o.WatchStall < 0 {
		return o, fmt.Errorf("--watch-stall-timeout: want a duration, 0 for never; got %s", o.WatchStall)
	}
	if err := checkSettings(o); err != nil {
		return o, err
	}
	var missing []string
	for name, v := range map[string]string{"--tls-cert-file": o.TLSCertFile, "--tls-key-file": o.TLSKeyFile, "--client-ca-file": o.ClientCAFile} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("required: %s (tenants are identified by client certificates)", strings.Join(missing, ", "))
	}
	return o, nil
}

// checkSettings refuses the settings that would otherwise be taken for
// something else: a negative share or slot count jammed or capped every
// tenant, a negative compaction interval turned compaction off, a
// non-positive grace cut every call at SIGTERM.
func checkSettings(o Options) error {
	switch {
	case o.BackendSlots < 1:
		return fmt.Errorf("--backend-slots: want 1 or more; got %d", o.BackendSlots)
	case o.WriteSlots < 0:
		return fmt.Errorf("--backend-write-slots: want 1 or more, or 0 for the backend's default; got %d", o.WriteSlots)
	case o.TenantShare < 0:
		return fmt.Errorf("--backend-tenant-share: want 0 (no cap) or more; got %d", o.TenantShare)
	case o.TenantWrites < -1:
		return fmt.Errorf("--backend-tenant-write-share: want 0 (--backend-tenant-share) or more, or -1 for the backend's default; got %d", o.TenantWrites)
	case o.TenantBusy != -1 && !(o.TenantBusy >= 0 && o.TenantBusy < 1): // NaN too
		return fmt.Errorf("--backend-tenant-busy-share: want a share from 0 (no bound) up to but not including 1, or -1 for the backend's default; got %g", o.TenantBusy)
	case o.Backend.CompactInterval < 0:
		return fmt.Errorf("--compact-interval: want a positive duration; got %s", o.Backend.CompactInterval)
	case o.Backend.CompactMinRetain < 0:
		return fmt.Errorf("--compact-min-retain: want 0 or more revisions; got %d", o.Backend.CompactMinRetain)
	case o.NotifyInterval < 0:
		return fmt.Errorf("--watch-progress-notify-interval: want a duration, 0 for none; got %s", o.NotifyInterval)
	case o.ShutdownDelay < 0:
		return fmt.Errorf("--shutdown-delay: want a duration, 0 for none; got %s", o.ShutdownDelay)
	case o.ShutdownGrace <= 0:
		return fmt.Errorf("--shutdown-grace: want a positive duration; got %s", o.ShutdownGrace)
	}
	return nil
}
