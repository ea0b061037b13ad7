// Command kplex-controller-manager is the upstream kube-controller-manager
// (k8s.io/kubernetes cmd/kube-controller-manager/app), unchanged. Tenant
// defaults (which controllers run) are flags built by
// kplex.dev/controller-manager/tenant.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
