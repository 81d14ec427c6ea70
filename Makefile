# faxbox — developer entry points. `make run` and `make test` are the two
# commands the README promises; both install what they need on Debian 12.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...

.PHONY: all build test bench vendor lint deps run
LISTEN ?= 127.0.0.1:8080
RUNDIR ?= .run

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/faxbox ./cmd/faxbox

# run: build and run a faxbox in the foreground (Ctrl-C stops it). The API
# token comes from FAXBOX_TOKEN, or is generated and printed.
run: deps build
	@mkdir -p $(RUNDIR)/data
	@tok="$${FAXBOX_TOKEN:-}"; if [ -z "$$tok" ]; then tok=$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_'); echo "FAXBOX_TOKEN=$$tok"; fi; \
	  echo "faxbox on http://$(LISTEN)  (try: curl -H \"Authorization: Bearer $$tok\" -F to=99990001 -F file=@README.md http://$(LISTEN)/v1/faxes)"; \
	  exec bin/faxbox serve -data $(RUNDIR)/data -listen $(LISTEN) -token "$$tok"

# deps installs the Debian packages the box and its tests use (idempotent).
deps:
	tools/deps.sh

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 60m $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m $(PKGS)

vendor:
	$(GO) mod tidy
	$(GO) mod vendor

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
