package process

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kplex.dev/cli/supervise"
	"kplex.dev/operator/internal/tenantpki"
)

func kubeconfigBytes(c *clientcmdapi.Config) ([]byte, error) { return clientcmd.Write(*c) }

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
	dir := filepath.Join(r.tenantDir(tenant), "pki")
	f := func(n string) string { return filepath.Join(dir, n) }
	caPEM, err := os.ReadFile(f(tenantpki.CA + ".crt"))
	if err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool}
	port, path := p.Controller, "/healthz"
	switch component {
	case APIServer:
		admin, err := tls.LoadX509KeyPair(f(tenantpki.Admin+".crt"), f(tenantpki.Admin+".key"))
		if err != nil {
			return fmt.Errorf("tenant %s: admin certificate: %w", tenant, err)
		}
		tlsCfg.Certificates = []tls.Certificate{admin}
		port, path = p.APIServer, "/readyz"
	case Scheduler:
		// kube-scheduler serves a self-signed certificate.
		tlsCfg = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health probe only
		port = p.Scheduler
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 3 * time.Second, Transport: tr}
	if err := probe(ctx, c, "https://127.0.0.1:"+strconv.Itoa(port)+path); err != nil {
		return fmt.Errorf("%s %s: %w", component, path, err)
	}
	return nil
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
			return fmt.Errorf("HTTP %d: not yet: %s", resp.StatusCode, strings.Join(failing, "; "))
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
