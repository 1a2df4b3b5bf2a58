#!/usr/bin/env bash
# Checks that third_party/kmsg is upstream kmsg at the version go.mod
# requires, with third_party/kmsg-patch.pl applied and PATCHES.md added:
# nothing edited by hand, nothing left out, no stale copy after a bump.
# `make verify-kmsg` runs it, and `make test` runs that. The only network it
# needs is the Go module proxy (go mod download, checked against go.sum's
# database as usual and against the hash below).
#
# After moving go.mod to a new kmsg: re-create the copy as PATCHES.md says
# and set KMSG_SUM to the "Sum" that `go mod download -json` prints for it.
set -euo pipefail

KMSG_MOD=github.com/twmb/franz-go/pkg/kmsg
KMSG_SUM='v1.15.1 h1:3sj7ekbH33t73nsBcHS0wtp/PyMIViHLNItZrE8V9zM='

GO=${GO:-go}
cd "$(dirname "$0")/.."

fail() {
	echo "verify-kmsg: $*" >&2
	exit 1
}

version=$($GO list -m -f '{{.Version}}' "$KMSG_MOD")
[ "$version" = "${KMSG_SUM%% *}" ] ||
	fail "go.mod requires $KMSG_MOD $version, but KMSG_SUM in $0 pins ${KMSG_SUM%% *}"

info=$($GO mod download -json "$KMSG_MOD@$version") || fail "go mod download $KMSG_MOD@$version failed: $info"
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$info"; }
dir=$(field Dir)
sum=$(field Sum)
[ -n "$dir" ] && [ -d "$dir" ] || fail "go mod download gave no directory for $KMSG_MOD@$version: $info"
[ "$version $sum" = "$KMSG_SUM" ] || fail "$KMSG_MOD@$version has hash $sum, want ${KMSG_SUM#* }"

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cp -R "$dir" "$tmp/kmsg"
chmod -R u+w "$tmp/kmsg"
out=$(perl third_party/kmsg-patch.pl "$tmp/kmsg" 2>&1) ||
	fail "third_party/kmsg-patch.pl does not apply to upstream $KMSG_MOD $version: $out"
cp third_party/kmsg/PATCHES.md "$tmp/kmsg/PATCHES.md"

if ! diff -r "$tmp/kmsg" third_party/kmsg >"$tmp/diff"; then
	head -n 60 "$tmp/diff" >&2
	fail "third_party/kmsg is not upstream $KMSG_MOD $version plus third_party/kmsg-patch.pl (diff -r upstream+patch third_party/kmsg above)"
fi
echo "verify-kmsg: third_party/kmsg is $KMSG_MOD $version plus third_party/kmsg-patch.pl"
