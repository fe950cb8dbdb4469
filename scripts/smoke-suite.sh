#!/usr/bin/env bash
# `make smoke`: starts the one-process suite on free ports with a fresh data directory, runs
# scripts/smoke.sh N times in a row, checks that the account holds nothing at all afterwards
# (no VPC, subnet, CVM, ENI, HAVIP or EIP), then stops the suite with SIGINT and checks that it
# exits 0.
#   scripts/smoke-suite.sh <havip-suite binary> [runs, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?havip-suite binary}; runs=${2:-20}
dir=$(mktemp -d)
pid=
stop() {
	local rc=$?
	if [[ -n $pid ]]; then
		kill -INT "$pid" 2>/dev/null
		wait "$pid" || rc=1
	fi
	((rc == 0)) || { echo "smoke: the suite's log:" >&2; tail -n 20 "$dir/log" >&2; }
	rm -rf "$dir"
	exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

: >"$dir/out" # before the suite starts, so that the wait below can read it at once
HAVIP_GRPC_ADDR=127.0.0.1:0 HAVIP_HTTP_ADDR=127.0.0.1:0 HAVIP_METRICS_ADDR=127.0.0.1:0 HAVIP_DATA_DIR="$dir/data" HAVIP_API_KEYS_FILE= \
	"$bin" >"$dir/out" 2>"$dir/log" &
pid=$!
until grep -q 'API key for account' "$dir/out"; do # the suite prints it once it serves
	kill -0 "$pid" 2>/dev/null || { echo "smoke: the suite exited" >&2; pid=; exit 1; }
	sleep 0.1
done
url=$(sed -n 's|.* REST on \(http://[^,]*\),.*|\1|p' "$dir/out")
key=$(sed -n 's|.*API key for account .*: ||p' "$dir/out")
echo "smoke: suite on $url (data in $dir)"

for ((i = 1; i <= runs; i++)); do
	scripts/smoke.sh "$url" "$key" >"$dir/run" || { cat "$dir/run"; echo "smoke: run $i of $runs failed" >&2; exit 1; }
done
echo "smoke: $runs runs green; $(cat "$dir/run")"

# What the runs left: nothing (a subnet's addresses go with it, and no subnet is left).
count() { # path → total_count
	local out
	out=$(curl -sS --max-time 30 -H "Authorization: Bearer $key" -w '\n%{http_code}' "$url$1")
	[[ ${out##*$'\n'} == 200 ]] || { echo "smoke: GET $1: $out" >&2; return 1; }
	python3 -c 'import json, sys; print(json.loads(sys.argv[1])["total_count"])' "${out%$'\n'*}"
}
left="vpcs=$(count /v1/vpcs) subnets=$(count /v1/subnets) instances=$(count /v1/instances)"
left+=" network-interfaces=$(count /v1/network-interfaces) havips=$(count /v1/havips) addresses=$(count /v1/addresses)"
echo "smoke: left in the account: $left"
[[ $left == "vpcs=0 subnets=0 instances=0 network-interfaces=0 havips=0 addresses=0" ]] ||
	{ echo "smoke: the runs left something behind" >&2; exit 1; }

kill -INT "$pid"
rc=0; wait "$pid" || rc=$?; pid=
[[ $rc == 0 ]] || { echo "smoke: the suite exited $rc after SIGINT" >&2; exit 1; }
echo "smoke: the suite stopped cleanly on SIGINT"
