#!/usr/bin/env bash
# Install Neovim 0.10 (Debian trixie) and 0.12 (Debian sid) into private prefixes for the editor
# end-to-end tests, without touching the system: Debian 12 ships only 0.7, and the newer builds need
# a newer libc, so each version is unpacked with its whole Depends closure (libc included) and run
# through that closure's own dynamic loader.
#
#   scripts/install-neovim.sh [VERSION...]    VERSION is 0.10 or 0.12 (default: both)
#
# Prints one line per version: "VERSION WRAPPER", where WRAPPER is an executable that runs that nvim.
# Everything lives in ${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}/nvim-VERSION/:
#   apt/   a private apt configuration (sources, lists, an empty dpkg status); the system's is untouched
#   debs/  the downloaded .debs, kept: a second run reuses them, so sid's moving target stays pinned
#          until the directory is removed
#   root/  the .debs unpacked with dpkg -x
#   bin/nvim  the wrapper
# The mirror URIs and Signed-By come from the machine's own bookworm stanza in
# /etc/apt/sources.list.d/debian.sources, so no host name lives in this repository.
# Idempotent: a version whose wrapper already reports the right version is left alone.
set -euo pipefail

CACHE=${CODINGPLAN_CACHE:-$HOME/.cache/codingplan}
SOURCES=/etc/apt/sources.list.d/debian.sources
ARCH_TRIPLET=x86_64-linux-gnu

die() { echo "install-neovim.sh: $*" >&2; exit 1; }

suite_for() {
	case $1 in
	0.10) echo trixie ;;
	0.12) echo sid ;;
	*) die "unknown version $1 (want 0.10 or 0.12)" ;;
	esac
}

# stanza SUITE: a deb822 stanza for SUITE reusing the URIs and Signed-By of the bookworm stanza.
stanza() {
	CODINGPLAN_DEBIAN_SOURCES=$SOURCES "$(dirname "${BASH_SOURCE[0]}")/debian-stanza.sh" "$1" || die "cannot build an apt source for $1"
}

# wrapper_ok WRAPPER VERSION: the wrapper runs and reports NVIM vVERSION.x.
wrapper_ok() {
	[[ -x $1 ]] && "$1" --version 2>/dev/null | head -n1 | grep -q "^NVIM v${2//./\\.}\."
}

install_version() {
	local version=$1 suite dir apt debs root wrapper
	suite=$(suite_for "$version")
	dir="$CACHE/nvim-$version"
	apt="$dir/apt"
	debs="$dir/debs"
	root="$dir/root"
	wrapper="$dir/bin/nvim"
	if wrapper_ok "$wrapper" "$version"; then
		echo "$version $wrapper"
		return 0
	fi
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d" \
		"$apt/etc/sources.list.d" "$debs" "$dir/bin"
	: >"$apt/status"
	stanza "$suite" >"$apt/etc/sources.list.d/$suite.sources"
	: >"$apt/etc/sources.list"
	local opts=(
		-o "Dir::Etc::SourceList=$apt/etc/sources.list"
		-o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
		-o "Dir::Etc::Preferences=$apt/etc/preferences"
		-o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
		-o "Dir::State::Lists=$apt/lists"
		-o "Dir::State::Status=$apt/status"
		-o "Dir::Cache=$apt/cache"
		-o "Dir::Cache::pkgcache="
		-o "Dir::Cache::srcpkgcache="
		-o "Acquire::Languages=none"
		-o "APT::Install-Recommends=false"
	)
	if [[ $(id -u) == 0 ]]; then
		opts+=(-o "APT::Sandbox::User=root")
	fi

	# Download only when no .deb is cached yet: the cache pins the version.
	if ! compgen -G "$debs/neovim_*.deb" >/dev/null; then
		local log pkgs
		log=$(mktemp)
		if ! apt-get "${opts[@]}" update -q >"$log" 2>&1; then
			cat "$log" >&2
			rm -f "$log"
			die "apt-get update for $suite failed"
		fi
		rm -f "$log"
		# The Depends closure of neovim and its runtime; virtual packages (<name>) and dependency
		# lines (indented) dropped.
		pkgs=$(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
			--no-breaks --no-replaces --no-enhances neovim neovim-runtime | grep -E '^[a-z0-9]' | sort -u)
		[[ -n $pkgs ]] || die "empty dependency closure for neovim in $suite"
		# shellcheck disable=SC2086 # one package name per word
		(cd "$debs" && apt-get "${opts[@]}" download -q $pkgs >/dev/null) ||
			die "apt-get download from $suite failed"
	fi

	rm -rf "$root"
	mkdir -p "$root"
	local deb
	for deb in "$debs"/*.deb; do
		dpkg -x "$deb" "$root"
	done
	local loader="$root/usr/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2"
	[[ -e $loader ]] || loader="$root/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2"
	[[ -e $loader ]] || die "no dynamic loader in $root"
	[[ -x $root/usr/bin/nvim ]] || die "no usr/bin/nvim in $root"

	# --library-path applies to nvim alone; LD_LIBRARY_PATH would leak into the processes nvim
	# starts (the language server) and make them load this libc.
	cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# Neovim $version from Debian $suite, unpacked by scripts/install-neovim.sh.
root='$root'
VIMRUNTIME="\$root/usr/share/nvim/runtime"
export VIMRUNTIME
exec "${loader}" --library-path "\$root/usr/lib/$ARCH_TRIPLET:\$root/lib/$ARCH_TRIPLET" "\$root/usr/bin/nvim" "\$@"
EOF
	chmod 0755 "$wrapper.tmp"
	mv "$wrapper.tmp" "$wrapper"
	wrapper_ok "$wrapper" "$version" ||
		die "$wrapper does not report NVIM v$version ($("$wrapper" --version 2>&1 | head -n1))"
	echo "$version $wrapper"
}

(($#)) || set -- 0.10 0.12
for v in "$@"; do
	install_version "$v"
done
