#!/usr/bin/env bash
# Build the VS Code extension package, dist/codingplan.vsix, with codingplan-lsp inside (make vsix).
#
#   scripts/vsix.sh
#
# Steps: build codingplan-lsp (static, for this machine's OS and architecture) into
# editors/vscode/bin; `npm ci` in editors/vscode when package-lock.json changed since the last one;
# type-check and bundle the extension (tsc, esbuild) into editors/vscode/out, which is build
# output and not in git, so every package is built from src/; package it with @vscode/vsce for this
# platform's VS Code target. Prints the path of the .vsix.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
GO=${GO:-go}
EXT=editors/vscode
OUT=dist/codingplan.vsix

die() { echo "vsix.sh: $*" >&2; exit 1; }

goos=$($GO env GOOS)
goarch=$($GO env GOARCH)
case $goos-$goarch in
linux-amd64) target=linux-x64 ;;
linux-arm64) target=linux-arm64 ;;
darwin-amd64) target=darwin-x64 ;;
darwin-arm64) target=darwin-arm64 ;;
windows-amd64) target=win32-x64 ;;
*) die "no VS Code target for $goos/$goarch" ;;
esac
exe=codingplan-lsp
[[ $goos == windows ]] && exe=codingplan-lsp.exe

mkdir -p "$EXT/bin" dist
rm -f "$EXT"/bin/codingplan-lsp*
CGO_ENABLED=0 GOEXPERIMENT=${GOEXPERIMENT:-runtimesecret} $GO build -trimpath -o "$EXT/bin/$exe" ./lsp/cmd/codingplan-lsp

cd "$EXT"
# npm ci wipes node_modules; skip it while the lock file is the one it installed.
stamp=node_modules/.codingplan-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
	npm ci --no-audit --no-fund --loglevel=error
	echo "$want" >"$stamp"
fi
npm run --silent compile
# vsce asks before packaging without these; the answers are fixed here.
npx --no-install vsce package --no-dependencies --target "$target" --out "../../$OUT" >/dev/null
echo "$OUT"
