package pki

import (
	"fmt"
	"net"
	"net/netip"
)

// APIServerSANs are the names every kube-apiserver of a cluster answers
// to: loopback, and the in-cluster "kubernetes" Service (its DNS names and
// the first IP of the Service range).
func APIServerSANs(serviceCIDR string) ([]string, []net.IP, error) {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return nil, nil, fmt.Errorf("service CIDR %q: %w", serviceCIDR, err)
	}
	first := p.Masked().Addr().Next()
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	return dns, []net.IP{net.ParseIP("127.0.0.1"), net.IP(first.AsSlice())}, nil
}
