# HAVIP control plane. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tools, installed into ./bin by `make tools`.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOLANGCI_LINT_VERSION      := v2.15.0
GRPCURL_VERSION            := v1.9.4
GRPC_GATEWAY_VERSION       := v2.32.0
GHZ_VERSION                := v0.120.0

# Every module of the workspace (there is no ./... across a go.work).
MODULES := $(shell go list -m -f '{{.Dir}}')

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/protoc-gen-grpc-gateway:
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(BIN)/protoc-gen-openapiv2:
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(BIN)/ghz:
	GOBIN=$(BIN) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

GEN_TOOLS := $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2

.PHONY: tools
tools: $(GEN_TOOLS) $(BIN)/golangci-lint $(BIN)/grpcurl $(BIN)/ghz ## Install the pinned tools into ./bin.
	@bash scripts/check-tool-versions.sh
	@bash scripts/check-tool-versions.sh ghz

.PHONY: grpcurl
grpcurl: $(BIN)/grpcurl ## Install only grpcurl into ./bin (under a minute; `make tools` builds every tool).

.PHONY: ghz
ghz: $(BIN)/ghz ## Install only ghz into ./bin (about a minute), for make load and the load test.

# etcd's own client, from the etcd release deploy/etcd/go.mod pins (that of the compose etcd; it
# has replace directives, so `go install ...@version` cannot build it).
.PHONY: etcdctl
etcdctl: ## Build etcdctl of the pinned etcd into ./bin (defragmentation, alarms: README, "Keeping etcd small").
	cd deploy/etcd && GOWORK=off go build -trimpath -o $(BIN)/etcdctl ./etcdctl

.PHONY: generate
generate: $(GEN_TOOLS) ## Delete and regenerate the Go code of proto/, its REST routes and the OpenAPI file.
	@bash scripts/check-tool-versions.sh
	find proto -name '*.pb.go' -o -name '*.pb.gw.go' | xargs rm -f
	rm -f gateway/openapi/openapi.swagger.json
	buf generate
	buf generate --template buf.gen.openapi.yaml --path proto/eip/v1/eip.proto --path proto/havip --path proto/ipam

.PHONY: check-generate
check-generate: generate ## Fail when the committed generated code is stale.
	@if [ -n "$$(git status --porcelain -- proto gateway/openapi)" ]; then \
		git status --porcelain -- proto gateway/openapi; git diff --stat -- proto gateway/openapi; \
		echo "generated code is stale: run 'make generate' and commit"; exit 1; fi

.PHONY: lint
lint: $(BIN)/buf $(BIN)/golangci-lint ## gofmt, go vet, golangci-lint, buf lint, buf format, buf breaking.
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./... && golangci-lint run ./...) || exit 1; done
	buf lint
	buf format --diff --exit-code
	@if git cat-file -e main:buf.yaml 2>/dev/null && [ "$$(git rev-parse --abbrev-ref HEAD)" != main ]; then \
		echo "buf breaking against main"; buf breaking --against '.git#branch=main'; fi

.PHONY: test
test: $(BIN)/ghz ## Run every test of every module (real embedded etcd; root for the network tests; ghz for the load test).
	@bash scripts/install-system-deps.sh
	@bash scripts/check-tool-versions.sh ghz
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -race -count=1 -timeout 20m ./...) || exit 1; done

SEED ?= 0
DURATION ?= 30m
.PHONY: soak
soak: ## Run the model-based integrity test for DURATION (default 30m) from SEED (0: from the clock; printed).
	@bash scripts/install-system-deps.sh
	cd integration && go test -run '^TestModel$$' -count=1 -v -timeout 0 ./model -model.soak=$(DURATION) -model.seed=$(SEED) -rapid.nofailfile

.PHONY: bench
bench: ## Run the benchmarks; each prints its figures next to a same-run etcd baseline.
	@for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./...) || exit 1; done

SCALE_MAX ?= 100000

.PHONY: bench-scale
bench-scale: ## Grow the store 1k → 10k → … → SCALE_MAX HAVIPs (daemons as processes, etcd fsync on) and print the growth table.
	cd integration && go test -run '^$$' -bench BenchmarkScale -benchtime 1x -count 1 -timeout 120m ./scale -scale.max $(SCALE_MAX)

.PHONY: bench-cpu
bench-cpu: ## Server CPU per CreateHaVip against etcd's CPU for the same write (etcd, ipamd, havipd as processes, then havip-suite; fsync on); CPU_PROFILES=DIR also profiles them.
	cd integration && go test -run '^$$' -bench BenchmarkCreateCPU -benchtime 1x -count 1 -timeout 30m ./scale $(if $(CPU_PROFILES),-cpu.profiles $(abspath $(CPU_PROFILES)))

RUNS ?= 1
.PHONY: chaos
chaos: ## Run the whole fault suite RUNS times (root: network namespaces); each run's table is appended to build/chaos.md.
	@bash scripts/install-system-deps.sh
	@mkdir -p build
	cd integration && go test -run '^TestFaults$$' -count $(RUNS) -v -timeout 0 ./chaos -chaos.full -chaos.table $(CURDIR)/build/chaos.md

CHURN ?= 100000
.PHONY: bench-churn
bench-churn: ## Create and delete CHURN HAVIPs three times (etcd fsync on, the suite's auto-compaction) and print etcd's database size per round.
	cd integration && go test -run '^$$' -bench BenchmarkChurn -benchtime 1x -count 1 -timeout 120m ./scale -scale.churn $(CHURN)

# The one-process suite, built rather than `go run`: `go run` exits 1 when its program is
# interrupted, so a clean Ctrl-C would end in "make: *** [run] Error 1".
.PHONY: suite
suite:
	go build -o $(BIN)/havip-suite ./suite/cmd/havip-suite

.PHONY: run
run: suite ## Run the whole suite in one process on an embedded etcd (HAVIP_GRPC_ADDR, HAVIP_DATA_DIR).
	exec $(BIN)/havip-suite

# The ghz scenarios (loadtest/). TARGET is every service's address (make run's); IPAM_TARGET,
# HAVIP_TARGET, EIP_TARGET and ARP_TARGET override it per service (the compose stack publishes
# one port per service: load-compose). KEY is the tenant's API key; CERTS the certificates
# directory (make run's, whose CA key lets the run issue its own client and agent certificates,
# or make compose-up's build/certs).
TARGET      ?= $(or $(HAVIP_GRPC_ADDR),127.0.0.1:50051)
CERTS       ?= $(or $(HAVIP_DATA_DIR),.havip-data)/certs
REQUESTS    ?= 2000
CONCURRENCY ?= 20

.PHONY: load
load: $(BIN)/ghz ## Run the ghz scenarios against a running stack (TARGET=<addr> KEY=<API key>; REQUESTS, CONCURRENCY) and print one table.
	@[ -n "$(KEY)" ] || { echo "make load: KEY=<API key> is required (make run prints one: \"API key for account ...\")"; exit 2; }
	@bash scripts/check-tool-versions.sh ghz
	@go build -o $(BIN)/havip-load ./loadtest/cmd/havip-load
	@HAVIP_LOAD_API_KEY='$(KEY)' $(BIN)/havip-load -ghz $(BIN)/ghz -certs '$(CERTS)' -target '$(TARGET)' \
		$(if $(IPAM_TARGET),-ipam-target '$(IPAM_TARGET)') $(if $(HAVIP_TARGET),-havip-target '$(HAVIP_TARGET)') \
		$(if $(EIP_TARGET),-eip-target '$(EIP_TARGET)') $(if $(ARP_TARGET),-arp-target '$(ARP_TARGET)') \
		-requests $(REQUESTS) -concurrency $(CONCURRENCY)

.PHONY: load-compose
load-compose: ## make load against the compose stack (KEY=<the key make compose-up printed>): its per-service ports and build/certs.
	$(MAKE) load IPAM_TARGET=$(or $(IPAM_TARGET),127.0.0.1:50051) HAVIP_TARGET=$(or $(HAVIP_TARGET),127.0.0.1:50052) \
		ARP_TARGET=$(or $(ARP_TARGET),127.0.0.1:50053) EIP_TARGET=$(or $(EIP_TARGET),127.0.0.1:50054) CERTS=build/certs

SMOKE_RUNS ?= 20

.PHONY: smoke
smoke: suite ## Start a suite on free ports, run scripts/smoke.sh SMOKE_RUNS (20) times, check nothing is left.
	bash scripts/smoke-suite.sh $(BIN)/havip-suite $(SMOKE_RUNS)

# The programs of the docker-compose stack (static, for FROM-scratch images), the host agent and
# the EIP gateway; the gateway, havip-cert (the stack's certs service), etcd and etcdctl are built apart.
IMAGES := ipam/cmd/ipamd havip/cmd/havipd arpbroker/cmd/arpbrokerd eip/cmd/eipd arpbroker/cmd/arpagent eip/cmd/natd

.PHONY: arpagent
arpagent: ## Build the host agent, static, into build/bin/arpagent (it also has an image: make images).
	@mkdir -p build/bin
	CGO_ENABLED=0 go build -trimpath -o build/bin/ ./services/arpbroker/cmd/arpagent

.PHONY: dataplane
dataplane: ## As root: the packet test of the data plane, verbose (fabric in namespaces, keepalived, agents with routes, natd; ~15 s).
	@bash scripts/install-system-deps.sh
	cd integration && go test -count=1 -v -run '^TestPacketsFollowTheOwner$$' ./dataplane

.PHONY: natd
natd: ## Build the EIP gateway, static, into build/bin/natd (it also has an image: make images).
	@mkdir -p build/bin
	CGO_ENABLED=0 go build -trimpath -o build/bin/ ./services/eip/cmd/natd

# havip/prometheus:dev is Debian's Prometheus with the libraries it loads (scripts/prometheus-image.sh;
# it installs the Debian package through scripts/install-system-deps.sh when it is missing).
.PHONY: images
images: ## Build static binaries into build/bin and a FROM-scratch image of each (havip/<name>:dev), and havip/prometheus:dev.
	@mkdir -p build/bin
	@for p in $(IMAGES); do CGO_ENABLED=0 go build -trimpath -o build/bin/ ./services/$$p || exit 1; done
	CGO_ENABLED=0 go build -trimpath -o build/bin/ ./gateway/cmd/gatewayd
	CGO_ENABLED=0 go build -trimpath -o build/bin/ ./platform/cmd/havip-cert
	cd deploy/etcd && GOWORK=off CGO_ENABLED=0 go build -trimpath -o ../../build/bin/etcd .
	cd deploy/etcd && GOWORK=off CGO_ENABLED=0 go build -trimpath -o ../../build/bin/etcdctl ./etcdctl
	@for b in build/bin/*; do n=$$(basename $$b); \
		DOCKER_BUILDKIT=0 docker build -q -f deploy/Dockerfile --build-arg BIN=$$n -t havip/$$n:dev . >/dev/null || exit 1; \
		echo "image havip/$$n:dev"; done
	@bash scripts/prometheus-image.sh

# scripts/compose-up.sh writes a fresh API key (its hash to build/api-keys, the key to
# build/api-key), starts the stack, waits until every container is healthy (3 minutes at most),
# copies the CA certificate and the operator's and agents' certificates and keys out of the
# certs container (its volume) to build/certs, brings up two simulated hosts with their agents
# and VMs running keepalived (scripts/compose-hosts.sh, as root), and prints how to call it.
# Host ports: the HAVIP_*_PORT variables of docker-compose.yml.
.PHONY: compose-up
compose-up: images ## Start the docker-compose stack (3 etcd members, replicas of every service, Prometheus, mTLS) and wait until it is healthy.
	bash scripts/compose-up.sh

.PHONY: compose-check
compose-check: ## Kill stack containers one at a time (etcd members, a replica of each service, the broker leader); smoke after each; Prometheus targets up.
	bash scripts/compose-failover.sh

.PHONY: compose-down
compose-down: ## Stop the simulated hosts and the docker-compose stack; delete its data and certificates (build/certs, build/api-key, build/api-keys too).
	bash scripts/compose-hosts.sh down
	docker-compose down -v --remove-orphans
	rm -rf build/certs build/api-key build/api-keys

.PHONY: ci
ci: tools check-generate lint test ## What .ci/run does.
