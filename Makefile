# faxbox — developer entry points. `make run` and `make test` are the two
# commands the README promises; both install what they need on Debian 12.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...

.PHONY: all build test bench vendor lint deps run lab-up lab-down lab-setup test-hw cross br-check image vendor-check
LISTEN ?= 127.0.0.1:8080
# SMTP_LISTEN: the box's SMTP listener (e-mail to fax: mail to
# <number>@fax.local) under `make run`.
SMTP_LISTEN ?= 127.0.0.1:2525
RUNDIR ?= .run

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/faxbox ./cmd/faxbox

# run: bring up the Asterisk lab (box + remote, tools/lab) and run a faxbox
# wired to it in the foreground (Ctrl-C stops faxbox; `make lab-down` stops
# Asterisk). The API token comes from FAXBOX_TOKEN, or is generated and
# printed. Send a real fax to the lab's number 100 with the curl it prints.
run: deps-run build lab-up
	@tok="$${FAXBOX_TOKEN:-}"; if [ -z "$$tok" ]; then tok=$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_'); echo "FAXBOX_TOKEN=$$tok"; fi; \
	  echo "faxbox on http://$(LISTEN)  — send a real fax through the lab:"; \
	  echo "  curl -H 'Authorization: Bearer $$tok' -F to=100 -F file=@/usr/share/doc/ghostscript/copyright http://$(LISTEN)/v1/faxes"; \
	  echo "and have the lab fax the box (its numbers 500-599 receive; then GET /v1/inbox):"; \
	  echo "  bin/faxbox-lab send -base-port $(LAB_BASE_PORT) -to 500 /etc/os-release"; \
	  echo "  e-mail to fax: swaks --server $(SMTP_LISTEN) --to 100@fax.local --attach @letter.pdf"; \
	  exec bin/faxbox serve -config $(RUNDIR)/faxbox.json -listen $(LISTEN) -token "$$tok" -smtp-listen $(SMTP_LISTEN)

# lab-up starts the lab's two Asterisk instances in the background and writes
# the faxbox config wired to them; lab-down stops them. LAB_BASE_PORT is the
# first of the lab's ports (box SIP; see tools/lab Options.BasePort).
LAB_BASE_PORT ?= 15060
lab-up: deps-run
	@mkdir -p $(RUNDIR)/data
	$(GO) build -o bin/faxbox-lab ./tools/lab/cmd/faxbox-lab
	@bin/faxbox-lab down >/dev/null 2>&1 || true
	@rm -f $(RUNDIR)/faxbox.json
	@nohup bin/faxbox-lab up -base-port $(LAB_BASE_PORT) -data $(RUNDIR)/data -config-out $(RUNDIR)/faxbox.json > $(RUNDIR)/lab.log 2>&1 &
	@for i in $$(seq 1 300); do [ -s $(RUNDIR)/faxbox.json ] && break; sleep 0.5; done; \
	  [ -s $(RUNDIR)/faxbox.json ] || { cat $(RUNDIR)/lab.log; echo "lab did not come up"; exit 1; }
	@tail -1 $(RUNDIR)/lab.log

lab-down:
	@pkill -f '^bin/faxbox-lab up' || true
	@[ -x bin/faxbox-lab ] && bin/faxbox-lab down -data $(RUNDIR)/data || true

lab-setup: deps-run
	$(GO) run ./tools/lab/cmd/faxbox-lab setup

# record-ami records again, on a lab of its own, the AMI transcripts the
# Asterisk dialler's replay tests play (firmware/asterisk/testdata/ami).
.PHONY: record-ami
record-ami: deps-run
	FAXBOX_RECORD_AMI=1 $(GO) test -tags lab -count=1 -run '^TestRecordAMI$$' ./firmware/asterisk/

# deps-run installs the Debian packages running the box and its lab needs,
# deps-test those and what only the tests use; deps is deps-test
# (idempotent; apt runs only when something is missing).
.PHONY: deps-run deps-test fresh-check
deps: deps-test
deps-run:
	tools/deps.sh run
deps-test:
	tools/deps.sh test

# fresh-check proves the README's `make run` on a fresh Debian 12: a clean
# bookworm root (debootstrap), this tree and the Go toolchain copied in,
# `make run` in it, a fax to the lab's 100 until delivered; it prints the
# time from the fresh root to the delivered fax and tears everything down.
fresh-check:
	tools/fresh-check/run.sh

# test is the whole suite: lint, the race detector on every test including
# the real-Asterisk lab, qemu and root ones (build tag "lab"), the cross
# builds and the offline vendored build. The fast loop while working is
# plain `go test ./...` (pure Go, no root, no lab: about a minute).
TAGS ?= lab
test: deps lab-setup lint cross vendor-check fresh-check
	$(GO) test -race -tags $(TAGS) -count=1 -parallel 16 -timeout 60m $(PKGS)

# bench runs every benchmark once (-benchtime 1x: each does a fixed amount of
# work per iteration), one package after the other, the real-lab ones
# included (tag lab; they need root), e.g. BenchmarkCaptureOverhead
# (firmware/media: faxbox's CPU with and without its media capture under 4
# T.38 faxes at once, and the datagrams it missed against dumpcap;
# FAXBOX_BENCH_ROUNDS on/off pairs, default 3, about 3 minutes).
bench: deps
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchtime 1x -timeout 60m $(PKGS)

vendor:
	$(GO) mod tidy
	$(GO) mod vendor

# lint: gofmt, go vet and staticcheck (a pinned version through the module
# proxy), with and without the lab tag.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags $(TAGS) $(PKGS)
	$(GO) run $(STATICCHECK) -tags $(TAGS) $(PKGS)

# test-hw runs just the front panel's hardware tests: the GPIO driver on the
# kernel's gpio-sim in qemu (tools/qemu-gpio), the LCD on a pseudo-terminal,
# the panel logic and the board profiles.
test-hw: deps
	$(GO) test -tags $(TAGS) -count=1 -v ./firmware/gpio ./firmware/lcd ./firmware/panel ./board

# cross builds the supervisor for the image's targets (CGO off) and checks
# each binary against the size budget (SIZE_BUDGET bytes, default 16 MiB).
SIZE_BUDGET ?= 16777216
cross:
	@mkdir -p dist
	@set -e; for t in arm64:arm64: arm:armv7:7 amd64:amd64:; do \
	  arch=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; arm=$${rest#*:}; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/faxbox-linux-$$name ./cmd/faxbox; \
	  size=$$(stat -c %s dist/faxbox-linux-$$name); \
	  printf 'dist/faxbox-linux-%-6s %9d bytes\n' $$name $$size; \
	  [ $$size -le $(SIZE_BUDGET) ] || { echo "over the size budget of $(SIZE_BUDGET) bytes"; exit 1; }; \
	done

# br-check needs a Buildroot source tree (BUILDROOT_SRC, not in this repo):
# every defconfig through Buildroot's own defconfig, check-dotconfig.py and
# check-package-external (python3-magic, flake8, shellcheck). image builds
# the pc_x86_64 image (needs the internet for Buildroot's downloads).
BR_OUT ?= $(CURDIR)/.br
br-check:
	@[ -d "$(BUILDROOT_SRC)" ] || { echo "set BUILDROOT_SRC to a Buildroot 2026.08 source tree"; exit 1; }
	@set -e; for d in buildroot/configs/*_defconfig; do n=$$(basename $$d); \
	  $(MAKE) -s -C $(BUILDROOT_SRC) BR2_EXTERNAL=$(CURDIR)/buildroot O=$(BR_OUT)/$$n $$n; \
	  python3 $(BUILDROOT_SRC)/support/scripts/check-dotconfig.py $(BR_OUT)/$$n/.config $$d; echo "$$n: ok"; done
	$(MAKE) -C $(BUILDROOT_SRC) BR2_EXTERNAL=$(CURDIR)/buildroot O=$(BR_OUT)/check check-package-external

image: vendor
	@[ -d "$(BUILDROOT_SRC)" ] || { echo "set BUILDROOT_SRC to a Buildroot 2026.08 source tree"; exit 1; }
	$(MAKE) -C $(BUILDROOT_SRC) BR2_EXTERNAL=$(CURDIR)/buildroot O=$(BR_OUT)/image faxbox_pc_x86_64_defconfig
	$(MAKE) -C $(BR_OUT)/image

# vendor-check proves the image's build works: a copy of the tree is vendored
# and built offline (-mod=vendor, GOPROXY=off), as Buildroot's golang-package
# does, and `go mod verify` checks the module cache against go.sum.
vendor-check:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	  git ls-files -z | xargs -0 -I{} cp --parents {} $$tmp/ 2>/dev/null; \
	  cd $$tmp && $(GO) mod verify >/dev/null && $(GO) mod vendor && \
	  GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/faxbox && \
	  echo "vendor-check: vendored modules build offline"
