#!/usr/bin/env bash
# Checks the compose stack's Prometheus through its HTTP API (its published port), waiting up to
# a deadline for each: every replica of every daemon (ipamd, havipd, arpbrokerd, eipd, gatewayd:
# each container's address on the compose network, port 9464) is a target, up, under its
# service's job, and no other target is; every rule of deploy/prometheus/rules.yml is loaded
# and evaluates without error; the broker has one leader (havip:arpbroker_leaders:sum is 1) and
# HavipBrokerNoLeader is not firing. make compose-check runs it first and last.
#   scripts/compose-prometheus.sh [-t seconds, default 90]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/compose-lib.sh
PROG=compose-prometheus
timeout=90
if [[ ${1:-} == -t ]]; then timeout=$2; shift 2; fi
compose_project
compose_ids
[[ -n ${CID[prometheus]:-} ]] || die "no prometheus container: make compose-up"
url="http://127.0.0.1:$(docker port "${CID[prometheus]}" 9090/tcp | head -n 1 | sed 's/.*://')"

# want: "job address:9464" of every daemon replica the stack runs.
want=()
for s in "${!CID[@]}"; do
	[[ $s =~ ^(ipamd|havipd|arpbrokerd|eipd|gatewayd)-[0-9]+$ ]] || continue
	ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${CID[$s]}")
	[[ -n $ip ]] || die "$s has no address (not running?)"
	want+=("${s%-*} $ip:9464")
done
((${#want[@]} == 11)) || die "want 11 daemon replicas, found ${#want[@]}: ${want[*]}"

# check: python3 over the API's answers; prints what is wrong, or "ok <targets> <rules>".
check() {
	local targets rules query
	targets=$(curl -sS --max-time 5 "$url/api/v1/targets?state=active") || { echo "GET $url/api/v1/targets failed"; return; }
	rules=$(curl -sS --max-time 5 "$url/api/v1/rules") || { echo "GET $url/api/v1/rules failed"; return; }
	query=$(curl -sS --max-time 5 --data-urlencode 'query=havip:arpbroker_leaders:sum' "$url/api/v1/query") ||
		{ echo "GET $url/api/v1/query failed"; return; }
	python3 - "$targets" "$rules" "$query" deploy/prometheus/rules.yml "${want[@]}" <<'EOF'
import json, re, sys
targets, rules, query = (json.loads(a) for a in sys.argv[1:4])
want = set(sys.argv[5:])
# The rule names of rules.yml (record: or alert:), without a YAML parser.
names = set(re.findall(r"^\s*-?\s*(?:record|alert):\s*(\S+)", open(sys.argv[4]).read(), re.M))
bad = []
seen = {}
for t in targets["data"]["activeTargets"]:
    key = f'{t["labels"].get("job")} {t["labels"].get("instance")}'
    seen[key] = t
    if key not in want:
        bad.append(f"unexpected target {key}")
    elif t["health"] != "up":
        bad.append(f'target {key} is {t["health"]} {t.get("lastError", "")}'.rstrip())
bad += [f"no target {k}" for k in sorted(want - seen.keys())]
loaded = {}
for g in rules["data"]["groups"]:
    for r in g["rules"]:
        loaded[r["name"]] = r
        if r.get("health") != "ok":
            bad.append(f'rule {r["name"]}: health {r.get("health")} {r.get("lastError", "")}'.rstrip())
bad += [f"rule {n} not loaded" for n in sorted(names - loaded.keys())]
if loaded.get("HavipBrokerNoLeader", {}).get("state") == "firing":
    bad.append("alert HavipBrokerNoLeader is firing")
res = query["data"]["result"]
if len(res) != 1 or res[0]["value"][1] != "1":
    bad.append(f"havip:arpbroker_leaders:sum is {[r['value'][1] for r in res] or 'empty'}, want 1")
print("\n".join(bad) if bad else f"ok {len(seen)} {len(loaded)}")
EOF
}

start=$SECONDS
while :; do
	out=$(check 2>&1) || true
	if [[ $out == "ok "* ]]; then
		read -r _ ntargets nrules <<<"$out"
		echo "compose-prometheus: $url: $ntargets targets up (every replica of ipamd, havipd, arpbrokerd, eipd, gatewayd), $nrules rules loaded and healthy, one broker leader ($((SECONDS - start))s)"
		exit 0
	fi
	if ((SECONDS - start >= timeout)); then
		echo "compose-prometheus: $url after ${timeout}s:" >&2
		sed 's/^/  /' <<<"$out" >&2
		exit 1
	fi
	sleep 2
done
