# codingplan: build, run and check. `make help` lists the targets.

# Every go command below runs with this exact toolchain (fetched through the module proxy on first
# use), whatever go is on PATH; scripts/ and .ci/run pin the same version.
export GOTOOLCHAIN := go1.27.3
# runtime/secret, with which codingplan-lsp erases the memory it frees (lsp/cmd/codingplan-lsp/
# secret_on.go); scripts/vsix.sh and the end-to-end tests build with it too.
export GOEXPERIMENT ?= runtimesecret

GO ?= go
# $(shell) does not see exported variables in make 4.3, hence GOTOOLCHAIN again.
GOFMT = $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) $(GO) env GOROOT)/bin/gofmt
GOTESTSUM = $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) scripts/gotool.sh gotest.tools/gotestsum@v1.13.0)

# Every main package under lsp/cmd/ and backend/cmd/, so a new command is built without edits here.
CMDS := $(sort $(patsubst %/,./%,$(dir $(wildcard lsp/cmd/*/*.go backend/cmd/*/*.go))))
# Go files for gofmt: the whole tree but editors' node_modules and testdata.
GOFILES = $(shell find . \( -name node_modules -o -name testdata -o -name '.?*' \) -prune -o -name '*.go' -print)

# Fuzz time per target: FUZZTIME for `make fuzz`, TEST_FUZZTIME for the fuzz phase of `make test`.
FUZZTIME ?= 60s
TEST_FUZZTIME ?= 5s

# The phases of `make test`, in order; each is a target below. Add a phase with `TEST_PHASES += x`.
TEST_PHASES := fmt-check vet test-go fuzz vuln

.DEFAULT_GOAL := build
.PHONY: help build run test test-go vet fmt fmt-check fuzz bench bench-idle bench-ngram vuln clean valkey-up valkey-down

help:
	@echo 'make build        (default) build every command into bin/'
	@echo 'make run          build, then run the account service and the backend (with a private Valkey on 6390 when installed)'
	@echo 'make test         everything CI runs: $(TEST_PHASES), with Valkey started for the tests'
	@echo 'make test-go      go test -race (Valkey and PostgreSQL tests skip unless CODINGPLAN_TEST_VALKEY, CODINGPLAN_TEST_POSTGRES are set)'
	@echo 'make vet          go vet'
	@echo 'make fmt          gofmt -s -w every Go file; fmt-check only lists unformatted files'
	@echo 'make test-pages   the account pages in Chromium (playwright-core) against bin/codingplan-accounts and bin/codingplan-lsp'
	@echo 'make fuzz         every Go fuzz target for FUZZTIME (default 60s) each'
	@echo 'make bench        every Go benchmark (backend/bench ones need CODINGPLAN_TEST_VALKEY: make valkey-up)'
	@echo 'make bench-idle   10,000 idle websockets on one backend for 60 s beside a bare gorilla server (about 3 minutes)'
	@echo 'make bench-ngram  the local model'"'"'s suggestions measured in full (precision, coverage; some minutes)'
	@echo 'make vuln         govulncheck against a local copy of the Go vulnerability database'
	@echo 'make valkey-up    start the dev Valkey (6390) and cluster (7001-7003); valkey-down stops them'
	@echo 'make clean        remove build output'

build:
	@mkdir -p bin
	$(if $(CMDS),$(GO) build -o bin/ $(CMDS),@echo 'build: no commands yet')

run: build
	scripts/run.sh $(ARGS)

test:
	MAKE="$(MAKE)" FUZZTIME=$(TEST_FUZZTIME) scripts/test.sh $(TEST_PHASES)

test-go:
	$(GOTESTSUM) --format pkgname --format-hide-empty-pkg -- -race -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	$(if $(GOFILES),$(GOFMT) -s -w $(GOFILES))

fmt-check:
	@out=$$($(if $(GOFILES),$(GOFMT) -s -l $(GOFILES))); \
	if [ -n "$$out" ]; then echo "not gofmt -s formatted (run make fmt):"; echo "$$out"; exit 1; fi

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

bench-idle:
	scripts/bench-idle.sh

bench-ngram:
	scripts/ngram-suggestions.sh

vuln:
	scripts/vuln.sh

valkey-up:
	scripts/valkey.sh install
	scripts/valkey.sh start
	scripts/valkey.sh cluster-start

valkey-down:
	scripts/valkey.sh stop
	scripts/valkey.sh cluster-stop

clean:
	rm -rf bin dist coverage.out coverage.html

# ---- Editors (editors engineer): the VS Code package and the editors' end-to-end tests --------
.PHONY: vsix test-e2e

# dist/codingplan.vsix with codingplan-lsp inside (npm ci only when package-lock.json changed).
vsix:
	scripts/vsix.sh

# Neovim 0.10 and 0.12, VS Code (code-server + Chromium) and Emacs eglot against the real
# binaries; installs the editors on first use (cached under ~/.cache/codingplan).
# `make test-e2e ARGS=neovim` (or vscode, emacs) runs one.
test-e2e: build vsix
	scripts/e2e.sh $(ARGS)

TEST_PHASES += test-e2e

# ---- Account pages: the browser test ----------------------------------------------------------
.PHONY: test-pages

# The account pages of codingplan-accounts in Debian's Chromium driven by playwright-core: sign
# up, confirm, sign in, key, approval of a running codingplan-lsp's device sign-in and its
# sign-out, billing, reset, deletion (~20 s). Installs Chromium and
# playwright-core on first use (scripts/install-playwright.sh, cached under ~/.cache/codingplan).
test-pages: build
	scripts/pages-e2e.sh

TEST_PHASES += test-pages
