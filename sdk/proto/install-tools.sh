#!/usr/bin/env bash
# Installs what `make proto` and the stale-code test need, idempotently:
#   - protoc (Debian's protobuf-compiler), only when no protoc is on PATH;
#   - protoc-gen-go at the google.golang.org/protobuf version go.mod pins;
#   - protoc-gen-go-grpc at PROTOC_GEN_GO_GRPC_VERSION below;
# both generators into the repository's bin/tools (git-ignored), so the code
# they write depends on the repository, not on what a machine happens to have.
#
# Run from anywhere: sdk/proto/install-tools.sh
set -euo pipefail

# protoc-gen-go-grpc is its own module; v1.5.1 emits code for grpc >= 1.64.
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1

root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="$root/bin/tools"
mkdir -p "$tools"

if ! command -v protoc >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1; then
		sudo=""
		if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
		echo "install-tools: installing protobuf-compiler with apt-get" >&2
		$sudo apt-get update -qq
		$sudo apt-get install -y -qq protobuf-compiler >/dev/null
	else
		echo "install-tools: protoc not found and apt-get unavailable; install protoc (>= 3.15) by hand" >&2
		exit 1
	fi
fi

cd "$root"
go_version="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"

# installed NAME WANT: true when bin/tools/NAME --version mentions WANT.
installed() {
	[ -x "$tools/$1" ] && "$tools/$1" --version 2>/dev/null | grep -qF "${2#v}"
}

if ! installed protoc-gen-go "$go_version"; then
	echo "install-tools: protoc-gen-go@$go_version -> bin/tools" >&2
	GOBIN="$tools" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$go_version"
fi
if ! installed protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"; then
	echo "install-tools: protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION -> bin/tools" >&2
	GOBIN="$tools" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi
