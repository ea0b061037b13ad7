// Package tenant holds kplex's defaults for a tenant's kube-scheduler.
// Pure data, no Kubernetes imports, so the operator builds the command
// line without linking the scheduler.
package tenant

import (
	"fmt"
	"strconv"
)

// Config is what differs between tenants.
type Config struct {
	Name       string
	Kubeconfig string // the scheduler's client identity on the tenant API
	// BindAddress and SecurePort serve /healthz and /metrics.
	BindAddress string
	SecurePort  int
	// LeaderElect is on when the tenant runs more than one replica.
	LeaderElect bool
}

// Flags returns the kube-scheduler arguments for the tenant.
func Flags(c Config) ([]string, error) {
	switch {
	case c.Name == "":
		return nil, fmt.Errorf("tenant scheduler: name is required")
	case c.Kubeconfig == "":
		return nil, fmt.Errorf("tenant %s scheduler: kubeconfig is required", c.Name)
	case c.SecurePort <= 0 || c.SecurePort > 65535:
		return nil, fmt.Errorf("tenant %s scheduler: secure port %d out of range", c.Name, c.SecurePort)
	}
	bind := c.BindAddress
	if bind == "" {
		bind = "127.0.0.1"
	}
	return []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--bind-address=" + bind,
		"--secure-port=" + strconv.Itoa(c.SecurePort),
		"--leader-elect=" + strconv.FormatBool(c.LeaderElect),
		"--profiling=false",
	}, nil
}
