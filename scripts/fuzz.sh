#!/usr/bin/env bash
# Run every Go fuzz target in the tree, one after another, for FUZZTIME each (default 60s).
# A failing input is written under the package's testdata/fuzz/ by go test: commit it as a regression.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
fuzztime=${FUZZTIME:-60s}

# Same tree walk as the go command: skip testdata, dot and underscore directories, node_modules.
mapfile -t files < <(find . \( -name node_modules -o -name testdata -o -name '.?*' -o -name '_*' \) \
	-prune -o -type f -name '*_test.go' -print | sort)

targets=() # "dir name"
for f in "${files[@]}"; do
	while read -r name; do
		targets+=("$(dirname "$f") $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f")
done

if ((${#targets[@]} == 0)); then
	echo "fuzz: no fuzz targets"
	exit 0
fi

failed=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	start=$SECONDS
	if go test -run='^$' -fuzz="^$name\$" -fuzztime="$fuzztime" "$dir"; then
		echo "fuzz: $name ($dir) ok in $((SECONDS - start))s"
	else
		echo "fuzz: $name ($dir) FAILED"
		failed+=("$name")
	fi
done

echo "fuzz: ${#targets[@]} targets, ${#failed[@]} failed${failed:+: ${failed[*]}}"
((${#failed[@]} == 0))
