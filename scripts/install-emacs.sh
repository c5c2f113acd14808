#!/usr/bin/env bash
# Install Emacs with eglot from Debian (emacs-nox, elpa-eglot) for the editor end-to-end test of
# docs/editors.md's eglot setup. Prints "emacs PATH". Does nothing when both are installed.
set -euo pipefail

pkgs=(emacs-nox elpa-eglot)
"$(dirname "$0")/apt-install.sh" "${pkgs[@]}"
echo "emacs $(command -v emacs)"
