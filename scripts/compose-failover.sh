#!/usr/bin/env bash
# `make compose-check`, against a stack `make compose-up` started: kills containers one at a
# time and checks, after each kill, that the stack keeps answering (scripts/smoke.sh through a
# live gateway replica); then starts the container again and waits until it is healthy before
# the next. Killed, in order: the etcd leader, an etcd follower, a replica of ipamd, havipd,
# eipd and gatewayd, the arpbrokerd leader (the leadership must move to another replica) and
# an arpbrokerd follower. Last, a crash: the process of a havipd replica is killed from the host
# (not through docker), and docker's restart policy must bring it back healthy on its own.
# After the first smoke run and at the end, every gatewayd and havipd replica must hold a
# connection to each replica of the services it calls (round-robin; read from its network
# namespace with nsenter and ss).
# With the simulated hosts up (scripts/compose-hosts.sh, which make compose-up starts), a HAVIP
# of vm-a2 (host-a) and vm-b2 (host-b) must also stay BIND to the same ENI through every kill
# (its owner lives on the agent's session, which the agents keep alive through any broker
# replica), and move to the other VM when its MASTER crashes, at the end; the HAVIP and the
# VMs' configurations are removed on every path.
# Prometheus (scripts/compose-prometheus.sh), first and last: every daemon replica a target and
# up, the rules loaded, one broker leader.
# Runs as root (nsenter; kill of a container's process).
#   scripts/compose-failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/compose-lib.sh
PROG=compose-check
[[ -r build/api-key && -r build/certs/ca.crt ]] || { echo "compose-check: run make compose-up first" >&2; exit 2; }
KEY=$(<build/api-key)
export HAVIP_CA=build/certs/ca.crt

log() { echo "== $(date +%T) $*"; }
id_of() { echo "${CID[$1]:?no container for $1}"; }
running() { case $(compose_state "$1") in healthy | starting | unhealthy | running) return 0 ;; esac; return 1; }
# etcdctl args...: etcd's own client, in a container on the stack's network (--no-deps: it
# must not start a member this script stopped).
etcdctl() { docker-compose run --rm --no-deps -T etcdctl "$@" 2>/dev/null; }

# smoke: the console flow through the first running gateway replica.
smoke() {
	local g port
	for g in gatewayd-1 gatewayd-2; do
		running "$g" || continue
		port=$(docker port "$(id_of "$g")" 8080/tcp | head -n 1 | sed 's/.*://')
		log "smoke through $g (https://127.0.0.1:$port)"
		scripts/smoke.sh "https://127.0.0.1:$port" "$KEY"
		return
	done
	echo "compose-check: no gateway replica running" >&2
	return 1
}

# etcd_leader: the service name of the etcd member that leads (etcd-N).
etcd_leader() {
	etcdctl endpoint status --cluster -w json | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["header"]["member_id"] == e["Status"]["leader"]:
        print(e["Endpoint"].split("//")[1].split(":")[0])'
}

# broker_leader: the service name of the arpbrokerd replica that leads (the address it
# advertises is its name).
broker_leader() {
	etcdctl get --prefix /havip/arp/leader/ --sort-by=CREATE --order=ASCEND --limit=1 --print-value-only | sed 's/:.*//'
}

# etcd_elected killed: waits until the etcd members other than killed are ready (/readyz,
# their healthcheck, run now: a leader, a linearizable read). Writes that reach the cluster
# between a leader's death and the election of the next (about a second) are lost with it: etcd
# answers them, after its 7-second request timeout, "request timed out, possibly due to previous
# leader failure", and the services pass that on (a 500) rather than retry a write that may have
# been applied.
etcd_elected() {
	local m t=$SECONDS
	for m in etcd-1 etcd-2 etcd-3; do
		[[ $m == "$1" ]] && continue
		until docker exec "$(id_of "$m")" /app health -ca=/certs/ca.crt -cert=/certs/etcd.crt -key=/certs/etcd.key >/dev/null 2>&1; do
			((SECONDS - t < 30)) || { echo "compose-check: etcd member $m not ready 30s after $1 died" >&2; return 1; }
			sleep 0.5
		done
	done
	log "etcd-1..3 but $1 ready ($((SECONDS - t))s)"
}

# kill_check service: SIGKILL the service's container, run the smoke test (once the remaining
# etcd members are ready, for a member), start it again, wait until it is healthy.
kill_check() {
	local s=$1 t
	log "kill $s"
	docker kill "$(id_of "$s")" >/dev/null
	t=$SECONDS
	[[ $s != etcd-* ]] || etcd_elected "$s"
	smoke
	log "answered with $s down ($((SECONDS - t))s)"
	owner_kept
	docker start "$(id_of "$s")" >/dev/null
	scripts/compose-wait.sh -t 120 "$s"
}

# spread: every caller replica holds a connection to every replica of each service it calls
# (round-robin over the name; a replica started again is found again, the name being resolved
# anew after a failure, at most every 30s), within a minute.
ip_of() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(id_of "$1")"; }
spread() {
	local caller callees c pid conns missing t=$SECONDS
	while :; do
		missing=()
		for caller in gatewayd-1:ipamd,havipd,eipd gatewayd-2:ipamd,havipd,eipd havipd-1:ipamd havipd-2:ipamd; do
			callees=${caller#*:} caller=${caller%%:*}
			pid=$(docker inspect -f '{{.State.Pid}}' "$(id_of "$caller")")
			conns=$(nsenter -t "$pid" -n ss -Htn state established)
			for c in $(for s in ${callees//,/ }; do echo "$s-1 $s-2"; done); do
				grep -qE "[[:space:]]$(ip_of "$c"):50051([[:space:]]|$)" <<<"$conns" || missing+=("$caller->$c")
			done
		done
		((${#missing[@]} == 0)) && break
		((SECONDS - t < 60)) || { echo "compose-check: no connection ${missing[*]}" >&2; return 1; }
		sleep 2
	done
	log "spread: each gatewayd and havipd replica is connected to every replica it calls ($((SECONDS - t))s)"
}

# The HAVIP on the simulated hosts, when they are up: HAVIP, and OWNER its owner ENI.
HAVIP= OWNER= crashed=
havip_cleanup() {
	local rc=$?
	set +e
	[[ -n $crashed ]] && scripts/compose-hosts.sh revive "$crashed" >/dev/null
	scripts/compose-hosts.sh reset vm-a2 vm-b2
	request DELETE "/v1/havips/$HAVIP"
	[[ $code == 2* ]] || echo "compose-check: cleanup: DELETE /v1/havips/$HAVIP: HTTP $code $body" >&2
	exit "$rc"
}
# owner_of: the HAVIP's "state eni host".
owner_of() {
	call GET "/v1/havips/$HAVIP"
	json '" ".join([d["havip_set"][0][k] for k in ("state", "network_interface_id", "host_id")])'
}
# await_owner seconds eni...: waits until one of the ENIs owns the HAVIP; sets OWNER.
await_owner() {
	local within=$1 t=$SECONDS o
	shift
	while :; do
		o=$(owner_of)
		for e in "$@"; do
			[[ $o == "BIND $e "* ]] && { OWNER=$e; log "HAVIP $HAVIP: $o ($((SECONDS - t))s)"; return; }
		done
		((SECONDS - t < within)) || die "HAVIP $HAVIP is $o, want BIND to one of $* within ${within}s"
		sleep 0.5
	done
}
# owner_kept: the HAVIP is still BIND to OWNER.
owner_kept() {
	[[ -n $HAVIP ]] || return 0
	local o
	o=$(owner_of)
	[[ $o == "BIND $OWNER "* ]] || die "HAVIP $HAVIP is $o, was BIND to $OWNER"
	log "HAVIP $HAVIP still BIND to $OWNER"
}

scripts/compose-wait.sh -t 60
compose_project
compose_ids # the IDs stay: a container killed is started again, not made anew
scripts/compose-prometheus.sh
smoke
spread # after a call: a client connects at its first
if [[ -r build/hosts/vms ]]; then
	rest_init
	read -r vpc subnet <build/hosts/network
	vm() { awk -v vm="$1" -v n="$2" '$1 == vm { print $n }' build/hosts/vms; }
	call POST /v1/havips "{\"vpc_id\":\"$vpc\",\"subnet_id\":\"$subnet\",\"havip_name\":\"compose-check\",\"havip_association_set\":[{\"instance_id\":\"$(vm vm-a2 3)\",\"instance_type\":\"CVM\"},{\"instance_id\":\"$(vm vm-b2 3)\",\"instance_type\":\"CVM\"}]}"
	HAVIP=$(json 'd["havip"]["havip_id"]')
	trap havip_cleanup EXIT
	scripts/compose-hosts.sh configure "$HAVIP"
	await_owner 30 "$(vm vm-a2 4)" "$(vm vm-b2 4)"
fi

leader=$(etcd_leader)
[[ $leader == etcd-[123] ]] || { echo "compose-check: no etcd leader ($leader)" >&2; exit 1; }
log "etcd leader: $leader"
kill_check "$leader"
leader=$(etcd_leader)
for m in etcd-1 etcd-2 etcd-3; do [[ $m == "$leader" ]] || break; done
log "etcd leader now $leader; a follower: $m"
kill_check "$m"

for s in ipamd-1 havipd-1 eipd-1 gatewayd-1; do kill_check "$s"; done

old=$(broker_leader)
[[ $old == arpbrokerd-[123] ]] || { echo "compose-check: no arpbrokerd leader ($old)" >&2; exit 1; }
log "arpbrokerd leader: $old; kill it"
docker kill "$(id_of "$old")" >/dev/null
t=$SECONDS
new=$old
until [[ $new != "$old" && $new == arpbrokerd-[123] ]]; do
	((SECONDS - t < 30)) || { echo "compose-check: the broker leadership did not move from $old within 30s" >&2; exit 1; }
	sleep 1
	new=$(broker_leader)
done
running "$new" || { echo "compose-check: the new broker leader $new is not running" >&2; exit 1; }
log "arpbrokerd leadership moved $old -> $new in $((SECONDS - t))s"
smoke
owner_kept
docker start "$(id_of "$old")" >/dev/null
scripts/compose-wait.sh -t 120 "$old"
[[ $(broker_leader) == "$new" ]] || { echo "compose-check: the leadership moved again when $old came back" >&2; exit 1; }
for f in arpbrokerd-1 arpbrokerd-2 arpbrokerd-3; do [[ $f == "$new" ]] || break; done
kill_check "$f"
[[ $(broker_leader) == "$new" ]] || { echo "compose-check: killing the follower $f moved the leadership" >&2; exit 1; }

s=havipd-2
id=$(id_of "$s")
restarts=$(docker inspect -f '{{.RestartCount}}' "$id")
pid=$(docker inspect -f '{{.State.Pid}}' "$id")
log "crash $s: kill -9 of its process ($pid) from the host"
kill -9 "$pid"
t=$SECONDS
until [[ $(docker inspect -f '{{.RestartCount}}' "$id") -gt $restarts ]] && running "$s"; do
	((SECONDS - t < 30)) || { echo "compose-check: docker did not restart $s within 30s" >&2; exit 1; }
	sleep 1
done
log "docker restarted $s ($((SECONDS - t))s)"
scripts/compose-wait.sh -t 120 "$s"
smoke
scripts/compose-wait.sh -t 60
spread
scripts/compose-prometheus.sh # replicas started again are found again (DNS, every 15 s)
if [[ -n $HAVIP ]]; then
	owner_kept
	for m in vm-a2 vm-b2; do [[ $(vm "$m" 4) == "$OWNER" ]] && break; done
	for o in vm-a2 vm-b2; do [[ $o != "$m" ]] && break; done
	log "crash $m, the MASTER"
	crashed=$m
	scripts/compose-hosts.sh crash "$m"
	await_owner 30 "$(vm "$o" 4)"
	scripts/compose-hosts.sh revive "$m"
	crashed=
fi
log "compose-check: passed"
