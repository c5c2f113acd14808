#!/usr/bin/env bash
# Check the module and its dependencies against the Go vulnerability database with govulncheck.
#
# govulncheck's online database is out of reach here, so the database is built locally from the
# golang.org/x/vulndb module (its data/osv reports, indexed by its cmd/indexdb) into
# ${XDG_CACHE_HOME:-~/.cache}/codingplan/vulndb, and rebuilt only when missing or when a newer
# vulndb version is published. CODINGPLAN_VULNDB_VERSION pins a version (skips the lookup).
set -euo pipefail

cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
GOVULNCHECK=golang.org/x/vuln/cmd/govulncheck@v1.9.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/codingplan/vulndb"
db="$cache/db"
stamp="$cache/version"

log() { echo "vuln.sh: $*" >&2; }

latest_vulndb() {
	# vulndb has no tags: @latest resolves to the newest pseudo-version of its main branch.
	(cd "$cache" && go mod download -json golang.org/x/vulndb@latest) |
		sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p'
}

mkdir -p "$cache"
have=$(cat "$stamp" 2>/dev/null || true)
want=${CODINGPLAN_VULNDB_VERSION:-}
if [[ -z $want ]]; then
	want=$(latest_vulndb) || want=
fi
if [[ -z $want ]]; then
	[[ -n $have && -d $db ]] || { log "cannot resolve golang.org/x/vulndb@latest and no cached database"; exit 1; }
	log "cannot resolve golang.org/x/vulndb@latest; using cached database $have"
	want=$have
fi

if [[ $have != "$want" || ! -f $db/index/db.json ]]; then
	start=$(date +%s)
	log "building vulnerability database from golang.org/x/vulndb@$want"
	src=$(cd "$cache" && go mod download -json "golang.org/x/vulndb@$want" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $src/data/osv ]] || { log "no data/osv in $src"; exit 1; }
	indexdb=$(scripts/gotool.sh "golang.org/x/vulndb/cmd/indexdb@$want")
	rm -rf "$db.new"
	"$indexdb" -vulns "$src/data/osv" -out "$db.new"
	rm -rf "$db"
	mv "$db.new" "$db"
	echo "$want" >"$stamp"
	log "database built in $(($(date +%s) - start))s"
fi

govulncheck=$(scripts/gotool.sh "$GOVULNCHECK")
"$govulncheck" -db "file://$db" ./...
