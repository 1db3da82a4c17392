# NullOps — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/nullops/nullops/internal/version.Version=$(VERSION)

.PHONY: help build test demo lint images

help: ## List the targets with a one-line description.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## Build static binaries of every command into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

test: ## Set up what is missing (PostgreSQL, registry, Chromium) and run the whole suite.
	bash scripts/test.sh

demo: ## Bring up a local installation with a demo project deployed and print its URLs.
	bash scripts/demo.sh

lint: ## go vet, plus staticcheck when it can be installed from the Go module proxy.
	$(GO) vet ./...
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -version >/dev/null 2>&1; then \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...; \
	else echo "staticcheck unavailable; ran go vet only"; fi

images: build ## Build FROM-scratch images of the server, agent and ingress (no pull needed).
	bash scripts/images.sh
