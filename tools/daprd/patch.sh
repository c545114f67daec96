#!/usr/bin/env bash
# patch.sh OUT prepares a build of the pinned Dapr with daprshop's changes to
# it, without touching the module cache (the go command refuses an -overlay of
# files in it). For each folder _patches/<name>, the module github.com/dapr/<name>
# (dapr, components-contrib) is copied to OUT/<name>, every <path>.patch under
# the folder is applied to the copy's <path>, and every <path>.go is added at
# <path> (the tests of the changes, and the components daprd is built with by
# default). OUT/daprd.mod and OUT/daprd.sum are this module's go.mod and go.sum
# with the copies replacing the modules, for `go build -modfile OUT/daprd.mod`.
# Run from tools/daprd.
set -euo pipefail
out=$1
command -v patch >/dev/null || { echo "patch.sh: needs patch(1): apt-get install -y patch" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out" && out=$(cd "$out" && pwd)
cp go.sum "$out/daprd.sum"
cp go.mod "$out/daprd.mod"
for dir in _patches/*/; do
	name=$(basename "$dir")
	mod=github.com/dapr/$name
	src=$(go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "patch.sh: cannot find the module $mod" >&2; exit 1; }
	cp -R "$src" "$out/$name" && chmod -R u+w "$out/$name"
	while IFS= read -r f; do
		rel=${f#"$dir"}
		case $rel in
		*.patch) patch --quiet --forward "$out/$name/${rel%.patch}" "$f" ;;
		*.go) cp "$f" "$out/$name/$rel" ;;
		esac
	done < <(find "$dir" -type f | sort)
	printf '\nreplace %s => %s\n' "$mod" "$out/$name" >> "$out/daprd.mod"
done
