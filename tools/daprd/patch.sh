#!/usr/bin/env bash
# patch.sh OUT prepares a build of the pinned Dapr with daprshop's changes to
# it, without touching the module cache (the go command refuses an -overlay of
# files in it): OUT/dapr is a copy of the github.com/dapr/dapr module with every
# _dapr/<path>.patch applied to <path> and every _dapr/<path>.go added at <path>
# (the tests of the changes), and OUT/daprd.mod and OUT/daprd.sum are this
# module's go.mod and go.sum with the copy replacing the module, for
# `go build -modfile OUT/daprd.mod`. Run from tools/daprd.
set -euo pipefail
out=$1
command -v patch >/dev/null || { echo "patch.sh: needs patch(1): apt-get install -y patch" >&2; exit 1; }
src=$(go mod download -json github.com/dapr/dapr | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "patch.sh: cannot find the github.com/dapr/dapr module" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out" && out=$(cd "$out" && pwd)
cp -R "$src" "$out/dapr" && chmod -R u+w "$out/dapr"
while IFS= read -r f; do
	rel=${f#_dapr/}
	case $rel in
	*.patch) patch --quiet --forward "$out/dapr/${rel%.patch}" "$f" ;;
	*.go) cp "$f" "$out/dapr/$rel" ;;
	esac
done < <(find _dapr -type f | sort)
cp go.sum "$out/daprd.sum"
{ cat go.mod; printf '\nreplace github.com/dapr/dapr => %s\n' "$out/dapr"; } > "$out/daprd.mod"
