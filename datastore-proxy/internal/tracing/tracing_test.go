package tracing_test

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/internal/tracing"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		endpoint string // when set, the endpoint wanted
		wantErr  string
	}{
		{name: "nothing set: off"},
		{name: "an endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, on: true},
		{name: "a traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, on: true},
		{name: "otlp named, default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}},
		{name: "SDK disabled wins", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}},
		{name: "SDK not disabled", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, on: true},
		{name: "grpc protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, on: true},
		{name: "another exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: `OTEL_TRACES_EXPORTER="zipkin"`},
		{name: "OTLP over HTTP", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf"`},
		{name: "the traces' protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, on: true},
		{name: "the traces' protocol over HTTP", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_EXPORTER": "otlp"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{name: "a protocol while off is no error", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}},
		{name: "values in capitals", env: map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"}, on: true},
		{name: "None in capitals", env: map[string]string{"OTEL_TRACES_EXPORTER": "None", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}},
		{name: "a host and port, no scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector.ns.svc:4317"}, wantErr: `OTEL_EXPORTER_OTLP_ENDPOINT="otel-collector.ns.svc:4317"`},
		{name: "an address and port, no scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "10.0.0.5:4317"}, wantErr: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "another scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://c:4317"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "https", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317"}, on: true, endpoint: "https://c:4317"},
		{name: "the traces' endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "bad", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4317"}, on: true, endpoint: "http://t:4317"},
		{name: "the spec's default endpoint, plain text", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, endpoint: "http://localhost:4317"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tracing.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.On != tc.on {
				t.Fatalf("on = %v; want %v", c.On, tc.on)
			}
			if tc.endpoint != "" && c.Endpoint != tc.endpoint {
				t.Fatalf("endpoint = %q; want %q", c.Endpoint, tc.endpoint)
			}
		})
	}
}

// Off, the gRPC server gets no option at all: no stats handler runs.
func TestOffAddsNoHook(t *testing.T) {
	tr, err := tracing.Start(context.Background(), tracing.Config{}, "test", func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	if opts := tr.ServerOptions(); len(opts) != 0 {
		t.Fatalf("traces off, the server gets %d options; want none", len(opts))
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A malformed OTEL_RESOURCE_ATTRIBUTES is reported, and traces go on
// with the rest of the resource, as OpenTelemetry's SDK has it.
func TestMalformedResourceAttributesAreReported(t *testing.T) {
	otelEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_RESOURCE_ATTRIBUTES": "team"})
	c, err := tracing.FromEnv(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var reported []error
	tr, err := tracing.Start(context.Background(), c, "test", func(err error) { reported = append(reported, err) })
	if err != nil {
		t.Fatalf("Start: %v; want traces on, the attributes reported", err)
	}
	defer tr.Shutdown(context.Background())
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "missing value: [team]") {
		t.Fatalf("reported %v; want the attributes' error once", reported)
	}
	if len(tr.ServerOptions()) == 0 {
		t.Fatal("no server option: traces are off")
	}
}

// otelEnv is every OTEL_* variable the tests' outcome depends on: each
// is unset for the test (a machine's own settings would change it), but
// those in set.
func otelEnv(t *testing.T, set map[string]string) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_HEADERS",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		t.Setenv(k, set[k]) // restored after the test
		if _, ok := set[k]; !ok {
			os.Unsetenv(k) // the SDK takes an empty sampler for one
		}
	}
}

// A tenant's call is a span in the collector the environment names, the
// child of the trace its caller sent, under the proxy's service name; with
// the SDK disabled, the collector gets nothing.
func TestCallsAreTracedToTheCollector(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabled bool
	}{{name: "on"}, {name: "disabled", disabled: true}} {
		t.Run(tc.name, func(t *testing.T) {
			col := startCollector(t)
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + col.addr}
			if tc.disabled {
				env["OTEL_SDK_DISABLED"] = "true"
			}
			otelEnv(t, env)
			px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
			c := px.Client(t, "tenant-a")
			const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+parentID+"-01")
			if _, err := c.Put(ctx, "/registry/a", "1"); err != nil {
				t.Fatal(err)
			}
			px.Stop() // sends the spans still held
			spans := col.spans()
			if tc.disabled {
				if len(spans) != 0 {
					t.Fatalf("the collector got %d spans with the SDK disabled; want none", len(spans))
				}
				return
			}
			var names []string
			for _, s := range spans {
				names = append(names, s.span.Name)
				if s.span.Name != "etcdserverpb.KV/Put" {
					continue
				}
				if got := hex.EncodeToString(s.span.TraceId); got != traceID {
					t.Errorf("the put's trace = %s; want the caller's, %s", got, traceID)
				}
				if got := hex.EncodeToString(s.span.ParentSpanId); got != parentID {
					t.Errorf("the put's parent = %s; want the caller's span, %s", got, parentID)
				}
				if s.service != "kplex-datastore-proxy" {
					t.Errorf("service.name = %q; want kplex-datastore-proxy", s.service)
				}
				return
			}
			t.Fatalf("no span of the put among the collector's %d: %v", len(spans), names)
		})
	}
}

// collector is an OTLP trace receiver over gRPC on loopback.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	addr string
	mu   sync.Mutex
	got  []collected
}

type collected struct {
	service string
	span    *tracepb.Span
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{addr: lis.Addr().String()}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, col)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return col
}

func (c *collector) Export(_ context.Context, r *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range r.ResourceSpans {
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.got = append(c.got, collected{service, s})
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) spans() []collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]collected(nil), c.got...)
}
