#!/usr/bin/env bash
# Generates the Go code of wildcat.plugin.v1 with protoc and the pinned
# generators in bin/tools (install them with sdk/proto/install-tools.sh).
#
#   sdk/proto/generate.sh [OUTDIR]
#
# OUTDIR defaults to the repository root, where the generated files are
# committed (sdk/proto/wildcat/plugin/v1/*.pb.go). The stale-code test passes a
# temporary OUTDIR and compares.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root}"
tools="$root/bin/tools"
for t in protoc-gen-go protoc-gen-go-grpc; do
	if [ ! -x "$tools/$t" ]; then
		echo "generate: $tools/$t missing; run sdk/proto/install-tools.sh" >&2
		exit 1
	fi
done
cd "$root/sdk/proto"
protoc -I . \
	--plugin=protoc-gen-go="$tools/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$tools/protoc-gen-go-grpc" \
	--go_out="$out" --go_opt=module=github.com/wildcathub/wildcat \
	--go-grpc_out="$out" --go-grpc_opt=module=github.com/wildcathub/wildcat \
	wildcat/plugin/v1/*.proto
