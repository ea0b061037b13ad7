# kplex: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

K8S_VERSION  := v1.37.2
KWOK_VERSION := v0.8.0
CONTROLLER_GEN_VERSION := v0.23.0
BIN          := $(CURDIR)/bin
GO           ?= go

VERSION_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean

# Every binary and the package it is built from.
UPSTREAM := kplex-apiserver=./apiserver/cmd/kplex-apiserver \
	kplex-controller-manager=./controller-manager/cmd/kplex-controller-manager \
	kplex-scheduler=./scheduler/cmd/kplex-scheduler \
	etcd=./e2e/cmd/etcd
OURS := kplexctl=./cli/cmd/kplexctl \
	kplex-datastore-proxy=./datastore-proxy/cmd/kplex-datastore-proxy \
	kplex-syncer=./syncer/cmd/kplex-syncer \
	kplex-operator=./operator/cmd/kplex-operator

# Modules of the workspace, except e2e (its tests need the binaries).
UNIT_PKGS := ./api/... ./apiserver/... ./cli/... ./controller-manager/... ./datastore-proxy/... ./operator/... ./scheduler/... ./syncer/...

.PHONY: help
help: ## show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: build
build: $(BIN)/kwok ## build every binary into bin/ (incremental)
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN)/ $(foreach b,$(UPSTREAM) $(OURS),$(lastword $(subst =, ,$(b))))

# kwok builds from the Go module proxy outside the workspace (its own
# dependency versions); a stamp names the version so a bump rebuilds it.
$(BIN)/kwok: $(BIN)/.kwok-$(KWOK_VERSION)
$(BIN)/.kwok-$(KWOK_VERSION):
	@mkdir -p $(BIN)
	GOWORK=off GOBIN=$(BIN) $(GO) install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	@rm -f $(BIN)/.kwok-* && touch $@

# controller-gen, pinned, for the API's deepcopy and CRD (make generate).
$(BIN)/controller-gen: $(BIN)/.controller-gen-$(CONTROLLER_GEN_VERSION)
$(BIN)/.controller-gen-$(CONTROLLER_GEN_VERSION):
	@mkdir -p $(BIN)
	GOWORK=off GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	@rm -f $(BIN)/.controller-gen-* && touch $@

.PHONY: generate
generate: $(BIN)/.controller-gen-$(CONTROLLER_GEN_VERSION) ## regenerate the API's deepcopy code and CRD manifests
	cd api && $(BIN)/controller-gen object paths=./v1alpha1/... && $(BIN)/controller-gen crd paths=./v1alpha1/... output:crd:artifacts:config=crd

.PHONY: up
up: build ## start the local host cluster and the demo virtual cluster
	$(BIN)/kplexctl up

.PHONY: down
down: ## stop every process `make up` started
	@if [ -x $(BIN)/kplexctl ]; then $(BIN)/kplexctl down; else $(GO) run ./cli/cmd/kplexctl down; fi

.PHONY: status
status: ## show the local environment's processes
	$(BIN)/kplexctl status

.PHONY: test
test: verify unit e2e ## run every check and test (what CI runs)

.PHONY: unit
unit: ## unit and package tests (no binaries needed)
	$(GO) test -count=1 $(UNIT_PKGS)

.PHONY: e2e
e2e: build ## end-to-end tests against a fresh local host cluster
	@log=$$(mktemp /tmp/kplex-e2e-output-XXXXXX.log); echo "full e2e output: $$log"; \
	KPLEX_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 25m -v ./e2e/... >$$log 2>&1; rc=$$?; \
	grep -E '^ *(--- |=== RUN)|^(PASS|FAIL|ok|panic)' $$log; \
	if [ $$rc != 0 ]; then echo "---- e2e failed; last 400 lines of $$log ----"; tail -n 400 $$log; fi; exit $$rc

.PHONY: verify
verify: $(BIN)/.controller-gen-$(CONTROLLER_GEN_VERSION) ## fail on untidy modules, k8s.io version drift, stale generated code, gofmt or vet findings
	hack/modules.sh verify
	@tmp=$$(mktemp -d) && cp -r api $$tmp/ && (cd $$tmp/api && $(BIN)/controller-gen object paths=./v1alpha1/... && $(BIN)/controller-gen crd paths=./v1alpha1/... output:crd:artifacts:config=crd) && \
	  if ! diff -r api/v1alpha1 $$tmp/api/v1alpha1 >/dev/null || ! diff -r api/crd $$tmp/api/crd >/dev/null; then echo "generated API code is stale: run make generate"; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet $(UNIT_PKGS) ./e2e/...

.PHONY: tidy
tidy: ## tidy every module (through go.work's replace block)
	hack/modules.sh tidy

.PHONY: bench-foundation
bench-foundation: build ## time builds and `up`, measure idle memory (docs/benchmarks.md)
	hack/bench-foundation.sh

.PHONY: bench-sync
bench-sync: build ## 50-pod and 1,000-pod rollouts through kplex vs directly on the host, syncer memory per pod (docs/benchmarks.md)
	$(GO) run ./e2e/cmd/bench-sync -bin-dir $(BIN)

.PHONY: bench-lifecycle
bench-lifecycle: build ## VirtualCluster create/delete times, 20 at once, operator and per-tenant idle memory (docs/benchmarks.md)
	$(GO) run ./e2e/cmd/bench-lifecycle -bin-dir $(BIN)

.PHONY: bench-fleet
bench-fleet: build ## host watches vs shards/tenants, fairness, failover after kill -9 of a shard (docs/benchmarks.md)
	$(GO) run ./e2e/cmd/bench-fleet -bin-dir $(BIN)

.PHONY: bench-datastore
bench-datastore: ## datastore-proxy vs direct etcd/kine: throughput, p50/p99, CPU and syscalls per request, fairness (docs/benchmarks.md)
	$(GO) run ./datastore-proxy/bench

.PHONY: clean
clean: ## remove bin/ (not .kplex: use `kplexctl down --purge`)
	rm -rf $(BIN)
