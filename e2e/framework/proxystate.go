package framework

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"kplex.dev/cli/localenv"
)

// proxyState is what a failed test prints of the datastore-proxy beside
// its log: how long each tenant's requests waited for a backend slot (the
// fair share's queue), the waits of a second or more, and the requests
// that did not end OK. A write that hangs in the proxy shows here, in the
// fair share or not; the log has nothing on it.
func proxyState(l localenv.Layout) string {
	st, err := localenv.LoadState(l)
	if err != nil {
		return fmt.Sprintf("no environment state: %v", err)
	}
	port := st.Ports[localenv.PortDatastoreMetrics]
	if port == 0 {
		return "no datastore-proxy metrics port in the environment state"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := Scrape(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "kplex_datastore_proxy_slot_wait_seconds_sum"),
			strings.HasPrefix(line, "kplex_datastore_proxy_slot_wait_seconds_count"):
			out = append(out, line)
		case strings.HasPrefix(line, "kplex_datastore_proxy_slot_wait_seconds_bucket") && strings.Contains(line, `le="1.6384"`):
			out = append(out, line) // with _count: how many waited longer
		case strings.HasPrefix(line, "kplex_datastore_proxy_requests_total") && !strings.Contains(line, `code="OK"`):
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// Scrape returns the page at url (a Prometheus /metrics), fetched with
// client.
func Scrape(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", url, err)
	}
	return string(body), nil
}
