#!/usr/bin/env bash
# Fails when a tool in ./bin is not the version the Makefile pins (a stale cache from an older pin).
set -euo pipefail
cd "$(dirname "$0")/.."
want() { grep -E "^$1 +:=" Makefile | awk '{print $3}'; }
check() { # name, pinned version, version the binary reports
	if [ "$2" != "$3" ] && [ "v$3" != "$2" ]; then
		echo "bin/$1 is $3, the Makefile pins $2: remove bin/$1 and run make tools" >&2; exit 1
	fi
}
check buf "$(want BUF_VERSION)" "$(bin/buf --version)"
check protoc-gen-go "$(want PROTOC_GEN_GO_VERSION)" "$(bin/protoc-gen-go --version | awk '{print $2}')"
check protoc-gen-go-grpc "$(want PROTOC_GEN_GO_GRPC_VERSION)" "$(bin/protoc-gen-go-grpc --version | awk '{print $2}')"
check protoc-gen-grpc-gateway "$(want GRPC_GATEWAY_VERSION)" "$(bin/protoc-gen-grpc-gateway --version | awk '{print $2}' | tr -d ,)"
check protoc-gen-openapiv2 "$(want GRPC_GATEWAY_VERSION)" "$(bin/protoc-gen-openapiv2 --version | awk '{print $2}' | tr -d ,)"
