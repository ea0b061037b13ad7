// Package crd ships the CustomResourceDefinitions generated from the API
// types (make generate), for installing them from Go (operator, tests).
package crd

import _ "embed"

// VirtualClusters is the kplex.dev VirtualCluster CRD (YAML).
//
//go:embed kplex.dev_virtualclusters.yaml
var VirtualClusters []byte
