#!/usr/bin/env bash
# Fails when a tool in ./bin is not the version the Makefile pins (a stale cache from an older pin).
#   scripts/check-tool-versions.sh          the code generators (make generate's)
#   scripts/check-tool-versions.sh ghz ...  those named
set -euo pipefail
cd "$(dirname "$0")/.."
want() { grep -E "^$1 +:=" Makefile | awk '{print $3}'; }
check() { # name, pinned version, version the binary reports
	if [ "$2" != "$3" ] && [ "v$3" != "$2" ]; then
		echo "bin/$1 is $3, the Makefile pins $2: remove bin/$1 and run make tools" >&2; exit 1
	fi
}
# The module version go install built (ghz's own --version says "dev" when built so).
modversion() { go version -m "bin/$1" | awk '$1 == "mod" {print $3}'; }
version() {
	case $1 in
	buf) bin/buf --version ;;
	protoc-gen-go) bin/protoc-gen-go --version | awk '{print $2}' ;;
	protoc-gen-go-grpc) bin/protoc-gen-go-grpc --version | awk '{print $2}' ;;
	protoc-gen-grpc-gateway | protoc-gen-openapiv2) "bin/$1" --version | awk '{print $2}' | tr -d , ;;
	ghz) modversion ghz ;;
	esac
}
pin() {
	case $1 in
	buf) want BUF_VERSION ;;
	protoc-gen-go) want PROTOC_GEN_GO_VERSION ;;
	protoc-gen-go-grpc) want PROTOC_GEN_GO_GRPC_VERSION ;;
	protoc-gen-grpc-gateway | protoc-gen-openapiv2) want GRPC_GATEWAY_VERSION ;;
	ghz) want GHZ_VERSION ;;
	*) echo "check-tool-versions: unknown tool $1" >&2; exit 2 ;;
	esac
}
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2)
for t in "${tools[@]}"; do
	p=$(pin "$t") || exit 2
	check "$t" "$p" "$(version "$t")"
done
