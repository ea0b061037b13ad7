package backend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBadConfigsGiveClearErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"unknown kind", Config{Kind: "cassandra"}, `want one of sqlite, etcd, postgres, mysql`},
		{"postgres without URL", Config{Kind: "postgres", DSN: "127.0.0.1:5432"}, "must be a postgres:// URL"},
		{"mysql without URL", Config{Kind: "mysql", DSN: "root@tcp(127.0.0.1:3306)/x"}, "must be a mysql:// URL"},
		{"sqlite without a place", Config{Kind: "sqlite"}, "--data-dir or --datastore-endpoint is required"},
		{"etcd without endpoints", Config{Kind: "etcd"}, "must list the cluster's URLs"},
		{"etcd with a missing CA", Config{Kind: "etcd", DSN: "https://127.0.0.1:1", CAFile: "/nonexistent/ca.crt", CertFile: "/nonexistent/c"}, "etcd backend TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			_, _, err := Open(ctx, &wg, tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}
