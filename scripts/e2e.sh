#!/usr/bin/env bash
# Editor end-to-end tests (make test-e2e): Neovim 0.10 and 0.12, VS Code (code-server) and Emacs
# (eglot) against the real codingplan-lsp, a real backend and the test provider.
#
#   scripts/e2e.sh [neovim|vscode|emacs]...     default: all three
#
# Needs bin/codingplan-{lsp,backend,fakeprovider,accounts} (make build). For VS Code it builds
# dist/codingplan.vsix from the sources (scripts/vsix.sh: tsc and esbuild, since the compiled
# extension is not kept in git) when the package is missing or older than what goes into it;
# installs the editors when missing (scripts/install-neovim.sh,
# scripts/install-code-server.sh, scripts/install-emacs.sh). Starts the test provider and a backend (in-process limiter, no
# Valkey) on loopback ports, mints tokens, runs the suites, stops what it started. Logs and, on a
# VS Code failure, screenshots stay in the artifacts directory printed at the end.
#
# CODINGPLAN_E2E_GHOST_RUNS=N measures instead of testing (scripts/bench-ghost.sh): the provider
# streams a multi-line block as 20 tokens over 500 ms, and the neovim (0.12) and vscode suites
# time keystroke-to-ghost-text N times. CODINGPLAN_E2E_LSP picks the codingplan-lsp the editors
# run (default bin/codingplan-lsp).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
(($#)) || set -- neovim vscode emacs
# What the test provider answers to every completion request, and so what the editors must insert
# after "fmt.Pr".
REPLY='intln("hello, world")'
# What it answers as choices 1 and 2 when asked for several ("n": 3, as the server does for an
# explicitly invoked inline completion): the editors' suggestion cycling must show these.
ALTS=('intf("hello, %s", "world")' 'int("hello, world")')

# What the provider streams when measuring: a block for the blank line Enter opens in main().
GHOST_RUNS=${CODINGPLAN_E2E_GHOST_RUNS:-}
GHOST_BLOCK=$'fmt.Println("one")\n\tfmt.Println("two")\n\tfmt.Println("three")\n\tfmt.Println("four")'

die() { echo "e2e.sh: $*" >&2; exit 1; }
for b in codingplan-lsp codingplan-backend codingplan-fakeprovider codingplan-accounts; do
	[[ -x bin/$b ]] || die "bin/$b missing: run make build"
done

ART=$(mktemp -d "${TMPDIR:-/tmp}/codingplan-e2e-XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

times=()
t0=$SECONDS
need_nvim=false need_vscode=false need_emacs=false
for s in "$@"; do
	case $s in
	neovim) need_nvim=true ;;
	vscode) need_vscode=true ;;
	emacs) need_emacs=true ;;&
	emacs) [[ -z $GHOST_RUNS ]] || die "emacs has no ghost text measurement" ;;
	*) die "unknown suite $s (want neovim, vscode or emacs)" ;;
	esac
done

nvims=()
if $need_nvim; then
	versions=(0.10 0.12)
	[[ -z $GHOST_RUNS ]] || versions=(0.12)
	while read -r _ path; do nvims+=("$path"); done < <(scripts/install-neovim.sh "${versions[@]}")
fi
code_server=
if $need_vscode; then
	# The package holds the extension compiled from editors/vscode/src and codingplan-lsp.
	if [[ ! -f dist/codingplan.vsix ]] || [[ -n $(find editors/vscode/src editors/vscode/package.json \
		editors/vscode/package-lock.json editors/vscode/tsconfig.json lsp shared go.mod go.sum \
		-newer dist/codingplan.vsix -print -quit) ]]; then
		echo "e2e.sh: building dist/codingplan.vsix (missing or older than its sources)"
		scripts/vsix.sh >/dev/null
	fi
	code_server=$(scripts/install-code-server.sh | sed -n 's/^code-server //p')
fi
if $need_emacs; then
	scripts/install-emacs.sh >/dev/null
fi
times+=("install $((SECONDS - t0))s")

# The test provider: its first stdout line is its URL.
t0=$SECONDS
provider_args=(--reply "$REPLY" --alt-reply "${ALTS[0]}" --alt-reply "${ALTS[1]}")
[[ -z $GHOST_RUNS ]] || provider_args=(--reply "$GHOST_BLOCK" --chunks 20 --stream-over 500ms)
bin/codingplan-fakeprovider --listen 127.0.0.1:0 "${provider_args[@]}" >"$ART/fakeprovider.out" 2>"$ART/fakeprovider.stderr" &
pids+=($!)
end=$((SECONDS + 30))
until [[ -s $ART/fakeprovider.out ]]; do
	((SECONDS < end)) || die "the test provider printed no URL (see $ART/fakeprovider.stderr)"
	kill -0 "${pids[-1]}" 2>/dev/null || die "the test provider exited (see $ART/fakeprovider.stderr)"
	sleep 0.05
done
provider=$(head -n1 "$ART/fakeprovider.out")

# The backend: the default model streams the reply above; "hang" is the provider's model that
# never answers, for holding a plan's only slot; "local" is the built-in model.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$ART/backend.toml" <<EOF
default_model = "e2e"

[[models]]
name = "e2e"
provider = "openai-chat"
base_url = "$provider/v1"
model = "e2e-instant"

[[models]]
name = "hang"
provider = "openai-chat"
base_url = "$provider/v1"
model = "hang"

# The built-in model, which serves completions only: the editors must offer no code action
# with it. Trained on a small public corpus (this repository's shared/), in about a second.
[[models]]
name = "local"
provider = "local"
[models.options]
no_goroot = "true"
corpus_dirs = "$ROOT/shared"
EOF
bin/codingplan-backend serve --config "$ART/backend.toml" --listen "127.0.0.1:$port" --valkey '' \
	--state-dir "$ART/state" --log-level info >"$ART/backend.stdout" 2>"$ART/backend.stderr" &
pids+=($!)
end=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
	((SECONDS < end)) || die "the backend is not ready (see $ART/backend.stderr)"
	kill -0 "${pids[-1]}" 2>/dev/null || die "the backend exited (see $ART/backend.stderr)"
	sleep 0.05
done
token() { bin/codingplan-backend token --sub "$1" --plan "$2" --ttl 1h --state-dir "$ART/state"; }

# The sign-in tests (device flow): an account service on SQLite with one account whose password
# the tests use to approve the code through its API, as the device page would, and a second
# backend that trusts the account service's keys.
wait_ready() { # url pid what
	local end=$((SECONDS + 30))
	until curl -fsS "$1" >/dev/null 2>&1; do
		((SECONDS < end)) || die "$3 is not ready (see $ART)"
		kill -0 "$2" 2>/dev/null || die "$3 exited (see $ART)"
		sleep 0.05
	done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
accounts_port=$(free_port)
export CODINGPLAN_ACCOUNTS_LISTEN=127.0.0.1:$accounts_port CODINGPLAN_ACCOUNTS_STATE_DIR=$ART/accounts \
	CODINGPLAN_ACCOUNTS_DATABASE=sqlite:$ART/accounts/accounts.db CODINGPLAN_ACCOUNTS_RATE_DEVICE_PER_MINUTE=0 \
	CODINGPLAN_ACCOUNTS_RATE_SESSION_PER_MINUTE=0 CODINGPLAN_ACCOUNTS_RATE_TOKEN_PER_MINUTE=0
mkdir -p "$ART/accounts"
export CODINGPLAN_E2E_ACCOUNTS_EMAIL=dev@localhost CODINGPLAN_E2E_ACCOUNTS_PASSWORD=e2e-password-not-secret
echo "$CODINGPLAN_E2E_ACCOUNTS_PASSWORD" | bin/codingplan-accounts account create --email "$CODINGPLAN_E2E_ACCOUNTS_EMAIL" \
	--name Dev --plan pro --password-stdin >/dev/null 2>"$ART/accounts.admin"
bin/codingplan-accounts serve >"$ART/accounts.stdout" 2>"$ART/accounts.stderr" &
pids+=($!)
wait_ready "http://127.0.0.1:$accounts_port/readyz" "${pids[-1]}" "the account service"
signin_port=$(free_port)
bin/codingplan-backend serve --config "$ART/backend.toml" --listen "127.0.0.1:$signin_port" --valkey '' \
	--jwks "http://127.0.0.1:$accounts_port/.well-known/jwks.json" --state-dir "$ART/state-signin" \
	>"$ART/backend-signin.stdout" 2>"$ART/backend-signin.stderr" &
pids+=($!)
wait_ready "http://127.0.0.1:$signin_port/readyz" "${pids[-1]}" "the sign-in backend"
export CODINGPLAN_E2E_ACCOUNTS_URL="http://127.0.0.1:$accounts_port"
export CODINGPLAN_E2E_SIGNIN_BACKEND_URL="ws://127.0.0.1:$signin_port/v1/ws"
export CODINGPLAN_E2E_BACKEND_URL="ws://127.0.0.1:$port/v1/ws"
export CODINGPLAN_E2E_LSP=${CODINGPLAN_E2E_LSP:-$ROOT/bin/codingplan-lsp}
export CODINGPLAN_E2E_GHOST_BLOCK=$GHOST_BLOCK
export CODINGPLAN_E2E_EXPECT=$REPLY
# Every choice the provider gives, as a JSON array of strings.
CODINGPLAN_E2E_CHOICES=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$REPLY" "${ALTS[@]}")
export CODINGPLAN_E2E_CHOICES
export CODINGPLAN_E2E_FAKEPROVIDER=$provider
export CODINGPLAN_REQUIRE_E2E=1
times+=("stack $((SECONDS - t0))s")

failed=()
if $need_nvim; then
	t0=$SECONDS
	echo "=== neovim (${#nvims[@]} versions)"
	run=()
	[[ -z $GHOST_RUNS ]] || run=(-run '^TestGhostLatency$' -timeout 30m)
	if ! CODINGPLAN_E2E_NVIM="${nvims[*]}" CODINGPLAN_E2E_NVIM_TOKEN=$(token e2e-nvim pro) \
		go test -count=1 -v "${run[@]}" ./editors/neovim/ 2>&1 | tee "$ART/neovim.log"; then
		failed+=(neovim)
	fi
	times+=("neovim $((SECONDS - t0))s")
fi
if $need_vscode; then
	t0=$SECONDS
	echo "=== vscode"
	if ! CODINGPLAN_E2E_CODE_SERVER=$code_server CODINGPLAN_E2E_VSIX="$ROOT/dist/codingplan.vsix" \
		CODINGPLAN_E2E_TOKEN=$(token e2e-vscode "$([[ -z $GHOST_RUNS ]] && echo lite || echo pro)") \
		CODINGPLAN_E2E_ARTIFACTS="$ART/vscode" \
		node --test editors/vscode/test/e2e/vscode.test.mjs 2>&1 | tee "$ART/vscode.log"; then
		failed+=(vscode)
	fi
	times+=("vscode $((SECONDS - t0))s")
fi
if $need_emacs; then
	t0=$SECONDS
	echo "=== emacs (eglot)"
	if ! CODINGPLAN_E2E_EMACS_TOKEN=$(token e2e-emacs pro) HOME="$ART/emacs-home" \
		emacs --batch -Q -l scripts/e2e-emacs.el 2>&1 | tee "$ART/emacs.log"; then
		failed+=(emacs)
	fi
	times+=("emacs $((SECONDS - t0))s")
fi

summary="e2e.sh:"
for t in "${times[@]}"; do summary+=" $t,"; done
echo "${summary%,}"
if ((${#failed[@]})); then
	echo "e2e.sh: FAILED: ${failed[*]} (logs and screenshots in $ART)"
	exit 1
fi
cleanup
trap - EXIT
rm -rf "$ART"
