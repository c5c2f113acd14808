#!/usr/bin/env bash
# Keystroke-to-ghost-text with a streaming model (issue 13), in Neovim 0.12 and VS Code
# (code-server), through scripts/e2e.sh's stack: the test provider streams a four-line block as 20
# tokens over 500 ms (--chunks 20 --stream-over 500ms), and each editor, RUNS times in contexts
# nobody has seen, times inside itself Enter (a blank line in a function body: a multi-line
# request) to the first ghost text, Tab (accept) to the next line's ghost text, and Enter to the
# whole block shown. Prints each run and the medians, per codingplan-lsp given.
#
#   scripts/bench-ghost.sh [-runs N] [-read MS] [-suites "neovim vscode"] [NAME=PATH-TO-codingplan-lsp]...
#
# -read MS: the user reads the first line MS ms before Tab (default 0: Tab as soon as it shows).
# Default: -runs 7, -read 0, both suites, now=bin/codingplan-lsp. Before and after a change, e.g.:
#   git -C /work/main worktree add /tmp/base main && (cd /tmp/base && go build -o /tmp/lsp-main ./lsp/cmd/codingplan-lsp)
#   scripts/bench-ghost.sh main=/tmp/lsp-main now=bin/codingplan-lsp
# Needs what scripts/e2e.sh needs (make build).
set -euo pipefail

cd "$(dirname "$0")/.."
runs=7
suites=(neovim vscode)
targets=()
while (($#)); do
	case $1 in
	-runs) runs=$2; shift 2 ;;
	-read) export CODINGPLAN_E2E_GHOST_READ_MS=$2; shift 2 ;;
	-suites) read -r -a suites <<<"$2"; shift 2 ;;
	*=*) targets+=("$1"); shift ;;
	*) echo "bench-ghost.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
((${#targets[@]})) || targets=("now=$PWD/bin/codingplan-lsp")

summary=()
for target in "${targets[@]}"; do
	name=${target%%=*} lsp=$(realpath "${target#*=}")
	echo "=== $name: $lsp"
	out=$(CODINGPLAN_E2E_LSP=$lsp CODINGPLAN_E2E_GHOST_RUNS=$runs scripts/e2e.sh "${suites[@]}" 2>&1) || {
		echo "$out" >&2
		echo "bench-ghost.sh: $name failed" >&2
		exit 1
	}
	grep -o 'ghost-bench .*' <<<"$out" | sed "s/^ghost-bench /$name /"
	while read -r line; do summary+=("$name ${line#ghost-bench }"); done < <(grep -o 'ghost-bench .*median.*' <<<"$out")
done
echo "=== medians (ms, $runs runs each; first: Enter to the first ghost text; next: Tab to the next line's; block: Enter to the whole block shown)"
printf '%s\n' "${summary[@]}"
