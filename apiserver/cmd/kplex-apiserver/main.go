// Command kplex-apiserver is the upstream kube-apiserver (k8s.io/kubernetes
// cmd/kube-apiserver/app) with nothing changed but its defaults. It serves
// both the local host cluster (plain upstream flags) and every tenant (the
// flags built by kplex.dev/apiserver/tenant).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"

	"kplex.dev/apiserver/gctune"
)

func main() {
	if s, ok := gctune.FromEnv(); ok {
		go gctune.Run(s)
	}
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
