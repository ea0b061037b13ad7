// Command etcd is upstream etcd (go.etcd.io/etcd/server/v3/etcdmain), built
// from the Go module proxy for the local host cluster.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
