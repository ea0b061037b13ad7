package server_test

import (
	"os"
	"testing"

	"kplex.dev/datastore-proxy/internal/embedetcd"
)

func TestMain(m *testing.M) {
	embedetcd.ServeIfChild() // etcd children of tests that measure their heap
	os.Exit(m.Run())
}
