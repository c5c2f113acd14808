#!/usr/bin/env bash
# Print the path of a Go tool built by the pinned toolchain, installing it on first use.
#
#   scripts/gotool.sh PACKAGE@VERSION      e.g. golang.org/x/vuln/cmd/govulncheck@v1.9.0
#
# Tools live in ${XDG_CACHE_HOME:-~/.cache}/codingplan/tools/<toolchain>/<name>@<version>/, so a
# toolchain or version change builds a fresh binary instead of reusing one built by another Go.
set -euo pipefail

export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
spec=${1:?usage: gotool.sh PACKAGE@VERSION}
[[ $spec == *@* ]] || { echo "gotool.sh: $spec: version required" >&2; exit 2; }
pkg=${spec%@*}
version=${spec##*@}
name=${pkg##*/}
dir="${XDG_CACHE_HOME:-$HOME/.cache}/codingplan/tools/$GOTOOLCHAIN/$name@$version"
if [[ ! -x $dir/$name ]]; then
	mkdir -p "$dir"
	# Outside the repo, so the project's go.mod neither constrains nor records the tool.
	(cd "$dir" && GOBIN="$dir" go install "$spec")
fi
echo "$dir/$name"
