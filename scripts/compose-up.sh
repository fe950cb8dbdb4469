#!/usr/bin/env bash
# `make compose-up` once the images are built: writes a fresh API key for acct-demo (its hash to
# build/api-keys, which the services read; the key itself to build/api-key, mode 0600, for the
# scripts), starts docker-compose.yml, waits until every container is healthy, copies the CA
# certificate and the operator's and agents' certificates out of the certs container to
# build/certs, brings up the simulated hosts (scripts/compose-hosts.sh up: root only) and
# prints how to call the stack.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
mkdir -p build
out=$(go run ./gateway/cmd/gatewayd new-key acct-demo)
sed -n 's/^keys file line: //p' <<<"$out" >build/api-keys
chmod 644 build/api-keys
key=$(sed -n 's/^key: //p' <<<"$out")
(umask 077 && echo "$key" >build/api-key)

docker-compose up -d
scripts/compose-wait.sh -t 180

certs=$(docker-compose ps -q certs)
[[ -n $certs ]] || { echo "compose-up: no certs container" >&2; exit 1; }
rm -rf build/certs && mkdir -p build/certs
docker cp "$certs:/certs/operator/." build/certs/ >/dev/null
docker cp "$certs:/certs/agents/." build/certs/ >/dev/null

if (($(id -u) == 0)); then
	scripts/compose-hosts.sh up
else
	echo "compose-up: not root: no simulated hosts (sudo scripts/compose-hosts.sh up adds them)"
fi

port() { docker-compose port "$1" "$2" | sed 's/.*://'; }
rest=$(port gatewayd-1 8080) rest2=$(port gatewayd-2 8080)
echo
docker-compose ps
echo
echo "up and healthy in $((SECONDS - start))s"
echo "REST on https://127.0.0.1:$rest and https://127.0.0.1:$rest2 (two gatewayd replicas; CA build/certs/ca.crt)"
echo "API key for acct-demo (also in build/api-key): $key"
echo "  curl --cacert build/certs/ca.crt -H 'Authorization: Bearer $key' https://127.0.0.1:$rest/v1/vpcs"
echo "  HAVIP_CA=build/certs/ca.crt scripts/smoke.sh https://127.0.0.1:$rest \$(cat build/api-key)"
echo "gRPC over mTLS as the operator, replica 1 of each: ipamd $(port ipamd-1 50051), havipd $(port havipd-1 50051), arpbrokerd $(port arpbrokerd-1 50051), eipd $(port eipd-1 50051):"
echo "  grpcurl -cacert build/certs/ca.crt -cert build/certs/operator.crt -key build/certs/operator.key \\"
echo "    -H x-havip-account:acct-demo 127.0.0.1:$(port havipd-1 50051) havip.v1.HaVipService/DescribeHaVips"
echo "Prometheus on http://127.0.0.1:$(port prometheus 9090) (every daemon replica, the rules of deploy/prometheus); scripts/compose-prometheus.sh checks its targets"
echo "Agents' certificates: build/certs/agent-host-a.crt/.key, agent-host-b.crt/.key"
echo "Hosts: scripts/compose-hosts.sh vms lists the VMs (README, \"A HAVIP on the simulated hosts\")"
echo "make compose-check kills containers one at a time and checks the stack keeps answering"
