#!/usr/bin/env bash
# Two simulated hosts beside the docker-compose stack, each with an arpagent and two VMs that
# run keepalived, all in network namespaces of this machine (root; keepalived and iproute2 from
# scripts/install-system-deps.sh). `make compose-up` runs `up`, `make compose-down` runs `down`.
#
#   scripts/compose-hosts.sh up                 the VMs' CVMs in ipamd, the namespaces, keepalived, the agents
#   scripts/compose-hosts.sh vms                each VM: host, CVM, ENI, IP, keepalived's state, the VIPs it holds
#   scripts/compose-hosts.sh configure <havip>  load the HAVIP's keepalived.conf (havipd's) into its VMs
#   scripts/compose-hosts.sh reset <vm>...      their keepalived without a configuration again
#   scripts/compose-hosts.sh crash <vm>         the VM dies: keepalived killed (SIGKILL), its link down
#   scripts/compose-hosts.sh revive <vm>        the VM comes back: link up, keepalived started again
#   scripts/compose-hosts.sh exec <vm|host> <command...>   run a command in its namespace
#   scripts/compose-hosts.sh down               stop the agents and keepalived, delete the namespaces
#
# The network: in ipamd, a VPC (10.0.0.0/16) and subnet (10.0.1.0/24) of the account acct-demo,
# and four CVMs, vm-a1 and vm-a2 on host-a, vm-b1 and vm-b2 on host-b, each with its primary ENI
# (MAC and IP). On this machine, a namespace per host (<project>-host-a, -host-b) holding a
# bridge, br0, with a port per VM (tap-a1, …) and an uplink to the other host's bridge (the
# subnet is one Ethernet segment across the hosts); and a namespace per VM (<project>-vm-a1, …)
# whose eth0, the other end of its port, has its ENI's MAC and IP. Bridges stay inside
# namespaces (docker's firewall drops frames bridged in the root namespace). Each VM runs
# keepalived (empty until `configure`); each host runs build/bin/arpagent with its host's
# certificate, its sockets on the host's ports (-netns) and its calls going to the three
# arpbrokerd replicas' published ports, round-robin. State, configurations and logs:
# build/hosts/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/compose-lib.sh
PROG=compose-hosts
DIR=build/hosts
VMS=(vm-a1 vm-a2 vm-b1 vm-b2)

host_of() { echo "host-${1:3:1}"; } # vm-a1 → host-a
tap_of() { echo "tap-${1:3}"; }     # vm-a1 → tap-a1

# names: PROJECT and the namespace of each host and VM (ns host-a, ns vm-a1).
names() {
	if [[ -r $DIR/project ]]; then PROJECT=$(<"$DIR/project"); else compose_project; fi
}
ns() { echo "$PROJECT-$1"; }

# inventory: $DIR/vms (name host instance eni mac ip/prefix), made through the API unless the
# CVMs it names still exist.
inventory() {
	if [[ -r $DIR/vms ]]; then
		local ok=1 name host ins rest
		while read -r name host ins rest; do
			request GET "/v1/instances/$ins"
			[[ $code == 200 ]] || ok=0
		done <"$DIR/vms"
		((ok)) && { echo "compose-hosts: the VMs' CVMs exist already ($DIR/vms)"; return; }
	fi
	call POST /v1/vpcs '{"vpc_name":"hosts","cidr_block":"10.0.0.0/16"}'
	local vpc subnet vm out=()
	vpc=$(json 'd["vpc"]["vpc_id"]')
	call POST /v1/subnets "{\"vpc_id\":\"$vpc\",\"subnet_name\":\"vms\",\"cidr_block\":\"10.0.1.0/24\"}"
	subnet=$(json 'd["subnet"]["subnet_id"]')
	for vm in "${VMS[@]}"; do
		call POST /v1/instances "{\"instance_name\":\"$vm\",\"subnet_id\":\"$subnet\",\"host_id\":\"$(host_of "$vm")\"}"
		out+=("$vm $(host_of "$vm") $(json 'd["instance"]["instance_id"]') $(json 'd["primary_network_interface"]["network_interface_id"]') $(json 'd["primary_network_interface"]["mac_address"]') $(json 'd["primary_network_interface"]["primary_ip_address"]')/24")
	done
	printf '%s\n' "$vpc $subnet" >"$DIR/network"
	printf '%s\n' "${out[@]}" >"$DIR/vms"
	echo "compose-hosts: made VPC $vpc, subnet $subnet (10.0.1.0/24) and the CVMs of ${VMS[*]}"
}

# vm_field vm n: field n of the VM's line in $DIR/vms (3 instance, 4 ENI, 5 MAC, 6 IP/prefix).
vm_field() { awk -v vm="$1" -v n="$2" '$1 == vm { print $n }' "$DIR/vms"; }

keepalived_start() {
	local vm=$1 d=$DIR/$1
	ip netns exec "$(ns "$vm")" setsid keepalived --dont-fork --log-console --vrrp -f "$PWD/$d/keepalived.conf" \
		-p "$PWD/$d/keepalived.pid" -r "$PWD/$d/vrrp.pid" -c "$PWD/$d/check.pid" >>"$d/keepalived.log" 2>&1 </dev/null &
	local t=$SECONDS
	until [[ -s $d/keepalived.pid ]]; do
		((SECONDS - t < 10)) || die "keepalived of $vm did not start: $d/keepalived.log"
		sleep 0.2
	done
}

# stop_pidfile file signal: signals the process group the file's process leads, if it runs.
stop_pidfile() {
	local pid
	[[ -s $1 ]] || return 0
	pid=$(<"$1")
	kill -0 "$pid" 2>/dev/null && kill "-$2" -- "-$pid" 2>/dev/null
	local t=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS - t < 10)) || { kill -KILL -- "-$pid" 2>/dev/null; break; }
		sleep 0.2
	done
	rm -f "$1"
}

up() {
	(($(id -u) == 0)) || die "needs root (network namespaces, AF_PACKET)"
	bash scripts/install-system-deps.sh
	[[ -x build/bin/arpagent ]] || die "no build/bin/arpagent: make images"
	down quiet
	mkdir -p "$DIR"
	compose_project
	echo "$PROJECT" >"$DIR/project"
	rest_init
	inventory

	local h vm tap ports
	for h in host-a host-b; do
		ip netns add "$(ns "$h")"
		ip -n "$(ns "$h")" link set lo up
		ip -n "$(ns "$h")" link add br0 type bridge
		ip -n "$(ns "$h")" link set br0 up
	done
	# The hosts' uplink: one Ethernet segment across both bridges.
	ip -n "$(ns host-a)" link add up-b type veth peer name up-a netns "$(ns host-b)"
	ip -n "$(ns host-a)" link set up-b master br0 up
	ip -n "$(ns host-b)" link set up-a master br0 up
	for vm in "${VMS[@]}"; do
		h=$(host_of "$vm") tap=$(tap_of "$vm")
		mkdir -p "$DIR/$vm"
		ip netns add "$(ns "$vm")"
		ip -n "$(ns "$vm")" link set lo up
		ip -n "$(ns "$h")" link add "$tap" type veth peer name eth0 netns "$(ns "$vm")"
		ip -n "$(ns "$vm")" link set eth0 address "$(vm_field "$vm" 5)"
		ip -n "$(ns "$vm")" addr add "$(vm_field "$vm" 6)" dev eth0
		ip -n "$(ns "$vm")" link set eth0 up
		ip -n "$(ns "$h")" link set "$tap" master br0 up
		echo "# no HAVIP yet: scripts/compose-hosts.sh configure <havip-id>" >"$DIR/$vm/keepalived.conf"
		keepalived_start "$vm"
	done

	# The agents, one per host, on the three broker replicas' published ports.
	local brokers=() b
	for b in arpbrokerd-1 arpbrokerd-2 arpbrokerd-3; do
		brokers+=("127.0.0.1:$(docker port "${CID[$b]:?no $b}" 50051/tcp | head -n 1 | sed 's/.*://')")
	done
	for h in host-a host-b; do
		ports=()
		for vm in "${VMS[@]}"; do
			[[ $(host_of "$vm") == "$h" ]] && ports+=("$(tap_of "$vm")=$(vm_field "$vm" 4)")
		done
		mkdir -p "$DIR/$h"
		setsid build/bin/arpagent -netns "$(ns "$h")" -broker "$(IFS=,; echo "${brokers[*]}")" -agent-id "agent-$h" \
			-ca build/certs/ca.crt -cert "build/certs/agent-$h.crt" -key "build/certs/agent-$h.key" \
			-port "$(IFS=,; echo "${ports[*]}")" >>"$DIR/$h/agent.log" 2>&1 </dev/null &
		echo $! >"$DIR/$h/agent.pid"
	done
	local t=$SECONDS
	for h in host-a host-b; do
		until grep -qs '"session open"' "$DIR/$h/agent.log"; do
			kill -0 "$(<"$DIR/$h/agent.pid")" 2>/dev/null || die "the agent of $h exited: $(tail -n 3 "$DIR/$h/agent.log")"
			((SECONDS - t < 30)) || die "the agent of $h opened no session within 30s: $DIR/$h/agent.log"
			sleep 0.2
		done
	done
	echo "compose-hosts: host-a and host-b up, each with an agent (session open) and two VMs running keepalived"
	vms
}

# vms: a line per VM.
vms() {
	names
	[[ -r $DIR/vms ]] || die "no hosts: scripts/compose-hosts.sh up"
	printf '%-6s %-7s %-13s %-13s %-18s %-14s %-10s %s\n' VM HOST CVM ENI MAC IP KEEPALIVED VIPS
	local vm host ins eni mac ip state vips
	while read -r vm host ins eni mac ip; do
		state=$(grep -oE 'Entering [A-Z]+ STATE' "$DIR/$vm/keepalived.log" 2>/dev/null | tail -n 1 | awk '{print $2}' || true)
		if ! [[ -s $DIR/$vm/keepalived.pid ]] || ! kill -0 "$(<"$DIR/$vm/keepalived.pid")" 2>/dev/null; then
			state=stopped
		elif grep -q '^# no HAVIP yet' "$DIR/$vm/keepalived.conf"; then
			state=idle
		fi
		vips=$(ip -n "$(ns "$vm")" -4 -o addr show dev eth0 2>/dev/null | awk -v p="${ip%/*}" '{split($4, a, "/"); if (a[1] != p) printf "%s ", a[1]}' || true)
		printf '%-6s %-7s %-13s %-13s %-18s %-14s %-10s %s\n' "$vm" "$host" "$ins" "$eni" "$mac" "$ip" "${state:-BACKUP?}" "${vips:--}"
	done <"$DIR/vms"
}

# configure havip: each VM whose CVM is in the HAVIP's switch range gets its keepalived.conf
# (havipd's, for interface eth0) and reloads it.
configure() {
	local havip=${1:?HAVIP ID} vm ins n=0
	names
	rest_init
	while read -r vm _ ins _; do
		request GET "/v1/havips/$havip/keepalived-config?format=text&instance_id=$ins"
		[[ $code == 200 ]] || continue
		echo "$body" >"$DIR/$vm/keepalived.conf"
		kill -HUP "$(<"$DIR/$vm/keepalived.pid")"
		echo "compose-hosts: $vm ($ins): keepalived.conf of $havip loaded ($DIR/$vm/keepalived.conf)"
		n=$((n + 1))
	done <"$DIR/vms"
	((n > 0)) || die "no VM of the hosts is in the switch range of $havip"
}

# reset vm...: the VMs' keepalived without a configuration again (the VIP goes).
reset() {
	local vm
	names
	for vm in "$@"; do
		[[ -s $DIR/$vm/keepalived.pid ]] || die "keepalived of $vm does not run"
		echo "# no HAVIP yet: scripts/compose-hosts.sh configure <havip-id>" >"$DIR/$vm/keepalived.conf"
		kill -HUP "$(<"$DIR/$vm/keepalived.pid")"
	done
}

crash() {
	local vm=${1:?VM}
	names
	[[ -d $DIR/$vm ]] || die "no VM $vm"
	stop_pidfile "$DIR/$vm/keepalived.pid" KILL
	ip -n "$(ns "$vm")" link set eth0 down
	echo "compose-hosts: $vm crashed: keepalived killed, eth0 down"
}

revive() {
	local vm=${1:?VM} a
	names
	[[ -d $DIR/$vm ]] || die "no VM $vm"
	stop_pidfile "$DIR/$vm/keepalived.pid" TERM
	# The VIP a killed keepalived left behind goes, as at a VM's reboot.
	for a in $(ip -n "$(ns "$vm")" -4 -o addr show dev eth0 | awk '{print $4}'); do
		[[ $a == "$(vm_field "$vm" 6)" ]] || ip -n "$(ns "$vm")" addr del "$a" dev eth0
	done
	ip -n "$(ns "$vm")" link set eth0 up
	keepalived_start "$vm"
	echo "compose-hosts: $vm back: eth0 up, keepalived started"
}

down() {
	[[ -d $DIR ]] || return 0
	names 2>/dev/null || { [[ ${1:-} == quiet ]] && return 0; die "no project"; }
	local h vm
	for h in host-a host-b; do stop_pidfile "$DIR/$h/agent.pid" TERM; done
	for vm in "${VMS[@]}"; do stop_pidfile "$DIR/$vm/keepalived.pid" TERM; done
	for n in "${VMS[@]}" host-a host-b; do
		ip netns del "$(ns "$n")" 2>/dev/null || true
	done
	[[ ${1:-} == quiet ]] || { rm -rf "$DIR"; echo "compose-hosts: down"; }
}

case ${1:-} in
up) up ;;
vms) vms ;;
configure) configure "${2:-}" ;;
reset) shift; reset "$@" ;;
crash) crash "${2:-}" ;;
revive) revive "${2:-}" ;;
exec)
	names
	n=${2:?VM or host}
	shift 2
	exec ip netns exec "$(ns "$n")" "$@"
	;;
down) down ;;
*) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
