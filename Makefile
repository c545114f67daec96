# daprshop: `make run` starts the system, `make test` proves it. `make help` lists
# every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

DAPR_VERSION   := 1.17.5
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK    := golang.org/x/vuln/cmd/govulncheck@v1.1.4
# VULNDB is Go's vulnerability database as of its date, fetched from the module
# proxy like any module, so that `make vulncheck` needs no access to vuln.go.dev.
# Move it forward to see newer reports.
VULNDB         := golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018
# VULN_ACCEPT names the modules (module@version, or stdlib) whose reachable
# vulnerabilities `make vulncheck` reports without failing: none.
VULN_ACCEPT    :=
# Every go command run from here uses the toolchain that go.mod's `toolchain`
# line names (the patch release of Go that fixes what VULNDB knows of the
# standard library), or the machine's own Go where that is newer: `auto` lets
# the go command fetch it from the module proxy, once. A GOTOOLCHAIN set in the
# environment is kept.
export GOTOOLCHAIN ?= auto
BIN            := $(CURDIR)/bin
DAPRD          := $(BIN)/daprd
DAPRD_SRC      := $(BIN)/daprd-src
DAPRD_PATCHES  := $(shell find tools/daprd/_patches -type f)
# DAPRD_COMPONENTS picks the components compiled into daprd: `daprshop` (those
# components/ uses, plus SQLite and in-memory: tools/daprd/_patches/dapr/cmd/
# daprd/components/daprshop.go) or `stable` (all of Dapr's stable components,
# Kafka and the cloud services' among them; its first build takes half as long
# again). The choice sticks (bin/daprd.components) until another is given.
ifndef DAPRD_COMPONENTS
DAPRD_COMPONENTS := $(or $(shell cat $(BIN)/daprd.components 2>/dev/null),daprshop)
endif
ifeq ($(filter daprshop stable,$(DAPRD_COMPONENTS)),)
$(error DAPRD_COMPONENTS is daprshop or stable, not "$(DAPRD_COMPONENTS)")
endif
# How daprd and the tests of its patches are compiled: the patched modules in
# place of Dapr's, with the chosen components' build tag.
DAPRD_FLAGS    := -modfile $(DAPRD_SRC)/daprd.mod -tags $(DAPRD_COMPONENTS)components -trimpath
# COMPONENTS picks a component set: `components` (Redis, the default) or a folder
# under components/, for example COMPONENTS=postgres-rabbitmq.
COMPONENTS     ?= components
GATEWAY_PORT   ?= 8080
E2E_TIMEOUT    ?= 20m

ifeq ($(COMPONENTS),components)
RESOURCES :=
else
RESOURCES := $(CURDIR)/components/$(COMPONENTS)
endif

# E2E_SETS are the component sets the end-to-end suite runs on, one after
# another, in `make test` and in `make e2e`; COMPONENTS=<set> on the command line
# (or in the environment) picks one.
E2E_SETS := components postgres-rabbitmq mariadb-mqtt
ifeq ($(origin COMPONENTS),file)
E2E_RUN := $(E2E_SETS)
else
E2E_RUN := $(COMPONENTS)
endif


# IMAGES is app:port for every app of dapr.yaml (deploy/validate checks the two agree).
IMAGES    := gateway:8080 hello:8888 catalog:8081 orders:8082 inventory:8083 payments:8084 notifications:8085
IMAGE_TAG ?= dev
DOCKER    ?= docker

.PHONY: FORCE help run test unit e2e lint vulncheck fmt clean daprd daprd-patches check-go images deploy-check bench bench-check

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

run: check-go ## start the whole system from dapr.yaml and print the gateway's address
	@if command -v dapr >/dev/null 2>&1 && [ -x "$$HOME/.dapr/bin/daprd" ] && [ -z "$(RESOURCES)" ]; then \
		echo "using the Dapr CLI: dapr run -f ."; exec dapr run -f . ; \
	fi; \
	$(MAKE) --no-print-directory daprd && \
	go build -o $(BIN)/run ./tools/run && \
	exec $(BIN)/run -f dapr.yaml -daprd $(DAPRD) -port $(GATEWAY_PORT) $(if $(RESOURCES),-resources $(RESOURCES)) $(if $(PROFILES),-profiles)

test: check-go daprd lint vulncheck unit daprd-patches deploy-check bench-check e2e ## vet, staticcheck, govulncheck, unit tests with -race, Kubernetes manifests, end-to-end tests on real sidecars

unit: ## unit tests with the race detector (no sidecar)
	go test -race -count=1 ./internal/... ./services/... ./tools/...

# Every set runs even when one fails; each set's system output is kept in
# .dapr/e2e-<set>.log, and the last line names the sets that failed.
e2e: daprd ## end-to-end tests on every component set in turn (COMPONENTS=<set>: that one)
	@failed=""; \
	for set in $(E2E_RUN); do \
		echo "=== end-to-end tests on component set $$set"; \
		if [ "$$set" != components ] && [ ! -d "components/$$set" ]; then \
			echo "no component set components/$$set"; failed="$$failed $$set"; continue; \
		fi; \
		start=$$(date +%s); \
		COMPONENTS=$$set DAPRD=$(DAPRD) go test -count=1 -timeout $(E2E_TIMEOUT) -v ./tests/ 2>&1 | \
			grep -vE '^=== (RUN|PAUSE|CONT)'; \
		rc=$${PIPESTATUS[0]}; \
		cp .dapr/e2e.log .dapr/e2e-$$set.log 2>/dev/null; \
		if [ $$rc -eq 0 ]; then result=passed; else result=FAILED; failed="$$failed $$set"; fi; \
		echo "=== component set $$set: $$result in $$(( $$(date +%s) - start ))s (system output: .dapr/e2e-$$set.log)"; \
	done; \
	if [ -n "$$failed" ]; then echo "end-to-end tests failed on:$$failed"; exit 1; fi

bench: daprd ## measure orders/s, sidecar overhead and the seed's Tornado service; writes bench/results/
	cd bench && go run . $(BENCH_FLAGS)

bench-check: daprd ## the bench tool briefly, and that its ledger check catches a lost order
	cd bench && go vet ./... && go test -count=1 ./...

deploy-check: ## render deploy/ and validate it offline: kustomize, Kubernetes types, Dapr CRDs
	cd deploy/validate && go vet ./... && go test -count=1 ./...

images: ## build one container image per app (needs a Docker engine)
	@command -v $(firstword $(DOCKER)) >/dev/null || { echo "make images needs docker and a running Docker engine"; exit 1; }
	@for i in $(IMAGES); do app=$${i%%:*}; port=$${i##*:}; \
		$(DOCKER) build --build-arg SERVICE=$$app --build-arg PORT=$$port -t daprshop/$$app:$(IMAGE_TAG) . || exit 1; \
	done

lint: $(BIN)/staticcheck ## go vet and staticcheck
	go vet ./...
	$(BIN)/staticcheck ./...

vulncheck: $(BIN)/govulncheck ## known vulnerabilities the services' code reaches (pinned VULNDB); fails outside VULN_ACCEPT
	@set -o pipefail; db=$$(go mod download -json $(VULNDB) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$db" || { echo "cannot fetch $(VULNDB) from the Go module proxy"; exit 1; }; \
		$(BIN)/govulncheck -format json -db "file://$$db/data/osv" ./... | go run ./tools/vulncheck -accept=$(VULN_ACCEPT)

fmt: ## gofmt every file
	gofmt -s -w $$(git ls-files '*.go')

clean: ## remove built binaries and logs
	rm -rf $(BIN) .dapr services/*/.dapr

daprd: $(DAPRD) ## build the pinned daprd with its patches (only when missing, or when the pin or a patch changed)

# daprd is rebuilt when the tools module that pins it changes, or the choice of
# components (bin/daprd.components, rewritten only when it differs).
# tools/daprd/_patches/ holds daprshop's changes to the pinned Dapr (see
# tools/daprd/main.go), built from patched copies of its modules (patch.sh).
$(DAPRD): tools/daprd/go.mod tools/daprd/go.sum tools/daprd/main.go tools/daprd/patch.sh $(DAPRD_PATCHES) $(BIN)/daprd.components
	@echo "building daprd $(DAPR_VERSION) with the $(DAPRD_COMPONENTS) components (a few minutes the first time)"
	cd tools/daprd && ./patch.sh $(DAPRD_SRC) && go build $(DAPRD_FLAGS) \
		-ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$(DAPR_VERSION)" -o $(DAPRD) .
	@test "$$($(DAPRD) --version)" = "$(DAPR_VERSION)" || { echo "daprd --version is not $(DAPR_VERSION)"; exit 1; }

$(BIN)/daprd.components: FORCE
	@mkdir -p $(BIN); [ "$$(cat $@ 2>/dev/null)" = "$(DAPRD_COMPONENTS)" ] || echo "$(DAPRD_COMPONENTS)" > $@

# daprd-patches' tests build with daprd's own flags, so that they reuse the
# packages its build compiled: with other flags, Dapr's dependencies compile a
# second time (2.6 minutes instead of 5.4 on two cores after a cold daprd build).
# Dapr's own tests of pkg/api/grpc need its `unit` tag, and the fakes they
# import take about four minutes more the first time.
DAPRD_TEST := go test $(DAPRD_FLAGS) -count=1

daprd-patches: ## test daprshop's changes to the pinned Dapr, with Dapr's own tests of the packages
	cd tools/daprd && ./patch.sh $(DAPRD_SRC) && \
		$(DAPRD_TEST) github.com/dapr/components-contrib/pubsub/redis \
			github.com/dapr/components-contrib/nameresolution/sqlite && \
		$(DAPRD_TEST) -run 'Outbox|Relay|SubscribeToInternalTopics|PublishInternal' \
			github.com/dapr/dapr/pkg/runtime/pubsub && \
		$(DAPRD_TEST) -tags $(DAPRD_COMPONENTS)components,unit -run 'Workers|GetMiddlewareOptions|Close' \
			github.com/dapr/dapr/pkg/api/grpc

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install $(STATICCHECK)

$(BIN)/govulncheck:
	GOBIN=$(BIN) go install $(GOVULNCHECK)

check-go:
	@command -v go >/dev/null || { echo "Go 1.26 or newer is required: https://go.dev/dl"; exit 1; }
	@go version | awk '{split($$3,v,"."); sub("go","",v[1]); if (v[1] < 1 || (v[1] == 1 && (v[2] < 26 || (v[2] == 26 && v[3] < 10)))) { print "Go 1.26.10 or newer is required, found " $$3 " (GOTOOLCHAIN=$(GOTOOLCHAIN)); with GOTOOLCHAIN=auto the go command fetches it"; exit 1 }}'
