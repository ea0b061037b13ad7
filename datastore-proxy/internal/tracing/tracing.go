// Package tracing turns on the proxy's OpenTelemetry traces when the
// standard OTEL_* environment asks for them, and leaves every request
// without a tracing hook when it does not.
//
// Traces go to an OTLP collector over gRPC. They are on when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// or OTEL_TRACES_EXPORTER=otlp (then to http://localhost:4317), unless
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The exporter reads
// the rest of its settings from the environment as OpenTelemetry's SDK
// does (headers, TLS, timeout, compression), the sampler from
// OTEL_TRACES_SAMPLER (default parentbased_always_on: every call but
// those whose caller sent a trace context it does not sample), and the
// resource from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Off, the gRPC server has no stats handler at all: even one whose spans
// go nowhere cost a get on SQLite 5.5 µs of the proxy's CPU, 6.6% of it
// (docs/benchmarks.md, session 40).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
)

// Config is what the environment asks of traces.
type Config struct {
	// On tells whether traces are exported.
	On bool
	// Endpoint is the collector's URL: the environment's, or the
	// spec's default, http://localhost:4317, when only the exporter is
	// named.
	Endpoint string
}

// defaultEndpoint is OpenTelemetry's default OTLP/gRPC endpoint: plain
// text, as the spec has it (the exporter's own default is TLS).
const defaultEndpoint = "http://localhost:4317"

// FromEnv reads the OTEL_* settings that decide whether traces are on,
// through getenv (os.Getenv). Once they are on, settings this proxy
// cannot honour are an error rather than traces silently lost: another
// exporter than otlp, OTLP over another protocol than gRPC, an endpoint
// that is not an http:// or https:// URL with a host (the exporter would
// read "collector:4317" as a scheme, and send nowhere). Values are
// matched without regard to case, as the spec asks.
func FromEnv(getenv func(string) string) (Config, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return Config{}, nil
	}
	var named bool
	switch e := strings.ToLower(env("OTEL_TRACES_EXPORTER")); e {
	case "":
	case "none":
		return Config{}, nil
	case "otlp":
		named = true
	default:
		return Config{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: the proxy exports traces with otlp (or none)", e)
	}
	c := Config{Endpoint: env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")}
	name := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	if c.Endpoint == "" {
		c.Endpoint, name = env("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT"
	}
	if c.Endpoint == "" && !named {
		return Config{}, nil
	}
	c.On = true
	if c.Endpoint == "" {
		c.Endpoint = defaultEndpoint
	} else if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Config{}, fmt.Errorf("%s=%q: want the collector's URL, http://host:port (plain text) or https://host:port", name, c.Endpoint)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := env(name); p != "" {
			if !strings.EqualFold(p, "grpc") {
				return Config{}, fmt.Errorf("%s=%q: the proxy sends OTLP over grpc only", name, p)
			}
			break // the traces' own setting wins over the general one
		}
	}
	return c, nil
}

// Tracer exports a service's spans; its zero value (traces off) adds no
// hook anywhere.
type Tracer struct {
	provider *sdktrace.TracerProvider
}

// Start sets up the exporter for c under the service name service (which
// OTEL_SERVICE_NAME overrides). The exporter connects in the background:
// an unreachable collector delays nothing. Its failures (a batch of
// spans not sent) go to onError, which becomes OpenTelemetry's error
// handler for the process: the last Start's wins.
func Start(ctx context.Context, c Config, service string, onError func(error)) (*Tracer, error) {
	if !c.On {
		return &Tracer{}, nil
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(onError))
	var opts []otlptracegrpc.Option
	if c.Endpoint == defaultEndpoint {
		// Only the exporter was named: the spec's endpoint, where the
		// exporter's own default would be TLS. An endpoint from the
		// environment the exporter reads itself, with the settings that
		// go with it.
		opts = append(opts, otlptracegrpc.WithEndpointURL(defaultEndpoint))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// The environment's attributes come after the default name, so that
	// OTEL_SERVICE_NAME wins.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	// A malformed OTEL_RESOURCE_ATTRIBUTES leaves the rest in use, as in
	// the SDK, which reports it to onError as it builds the provider.
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracer{provider: tp}, nil
}

// ServerOptions are the gRPC server options that trace every call: a
// span per call, the child of the caller's trace context (W3C
// traceparent, as kube-apiserver's etcd client sends it when it traces).
// None when traces are off.
func (t *Tracer) ServerOptions() []grpc.ServerOption {
	if t.provider == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.provider),
		otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	))}
}

// Shutdown sends the spans still held and stops the exporter, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}
