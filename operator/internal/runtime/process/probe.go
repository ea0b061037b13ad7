package process

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"kplex.dev/cli/supervise"
	"kplex.dev/operator/internal/tenantpki"
)

// Ready probes the apiserver's /readyz (as the tenant admin) and the
// controller manager's (and scheduler's) /healthz. A component that is not
// running is reported with its log's last lines.
func (r *Runtime) Ready(ctx context.Context, tenant string) error {
	components := []string{APIServer, Controller}
	if st, _, _ := supervise.Inspect(r.pid(tenant, Scheduler)); st == supervise.Running {
		components = append(components, Scheduler)
	}
	for _, c := range components {
		if err := r.probe(ctx, tenant, c); err != nil {
			return err
		}
		if c == APIServer {
			r.done(tenant) // its start slot goes to the next tenant
		}
	}
	return nil
}

// probe checks one component: running, and healthy over HTTPS with the
// tenant CA (the apiserver as the tenant admin).
func (r *Runtime) probe(ctx context.Context, tenant, component string) error {
	if st, _, _ := supervise.Inspect(r.pid(tenant, component)); st != supervise.Running {
		log := filepath.Join(r.LogDir, ProcessName(tenant, component)+".log")
		return fmt.Errorf("%s is not running; last log lines (%s):\n%s", component, log, supervise.Tail(log, 5))
	}
	p, err := r.ports(tenant)
	if err != nil {
		return err
	}
	cl, err := r.clients(tenant)
	if err != nil {
		return err
	}
	c, port, path := cl.tenantCA, p.Controller, "/healthz"
	switch component {
	case APIServer:
		c, port, path = cl.admin, p.APIServer, "/readyz"
	case Scheduler:
		c, port = cl.insecure, p.Scheduler
	}
	if err := probe(ctx, c, "https://127.0.0.1:"+strconv.Itoa(port)+path); err != nil {
		return fmt.Errorf("%s %s: %w", component, path, err)
	}
	return nil
}

// probeClients are a tenant's health-check clients, kept between probes so
// a resync does not cost a TLS handshake per component.
type probeClients struct {
	key                       string // the files they were made from
	admin, tenantCA, insecure *http.Client
}

// clients returns the tenant's probe clients, rebuilt when its CA or admin
// certificate changed.
func (r *Runtime) clients(tenant string) (*probeClients, error) {
	dir := filepath.Join(r.tenantDir(tenant), "pki")
	f := func(n string) string { return filepath.Join(dir, n) }
	caPEM, err := os.ReadFile(f(tenantpki.CA + ".crt"))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	adminPEM, err := os.ReadFile(f(tenantpki.Admin + ".crt"))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", tenant, err)
	}
	key := string(caPEM) + string(adminPEM)
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	if c, ok := r.probes[tenant]; ok && c.key == key {
		return c, nil
	}
	admin, err := tls.LoadX509KeyPair(f(tenantpki.Admin+".crt"), f(tenantpki.Admin+".key"))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: admin certificate: %w", tenant, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	mk := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	}
	c := &probeClients{key: key,
		admin:    mk(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}}),
		tenantCA: mk(&tls.Config{RootCAs: pool}),
		// kube-scheduler serves a self-signed certificate.
		insecure: mk(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // loopback health probe only
	}
	if old, ok := r.probes[tenant]; ok {
		old.close()
	}
	if r.probes == nil {
		r.probes = map[string]*probeClients{}
	}
	r.probes[tenant] = c
	return c, nil
}

func (c *probeClients) close() {
	for _, h := range []*http.Client{c.admin, c.tenantCA, c.insecure} {
		h.CloseIdleConnections()
	}
}

// forgetClients drops a stopped tenant's probe clients.
func (r *Runtime) forgetClients(tenant string) {
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	if c, ok := r.probes[tenant]; ok {
		c.close()
		delete(r.probes, tenant)
	}
}

// statusError is an HTTP answer other than 200: the server is up.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.msg) }

// answers reports whether a probe reached a serving process (ready or not).
func answers(err error) bool {
	var se *statusError
	return err == nil || errors.As(err, &se)
}

func probe(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		// readyz lists every check; name only the failing ones.
		var failing []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "[-]") {
				failing = append(failing, strings.TrimPrefix(l, "[-]"))
			}
		}
		if len(failing) > 0 {
			return &statusError{resp.StatusCode, "not yet: " + strings.Join(failing, "; ")}
		}
		return &statusError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	return nil
}
