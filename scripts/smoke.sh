#!/usr/bin/env bash
# The README's console flow over REST against a running stack, checking each answer:
#   scripts/smoke.sh http://127.0.0.1:8080 <api key>
#   HAVIP_CA=build/certs/ca.crt scripts/smoke.sh https://127.0.0.1:8080 <api key>
# (make run, or make compose-up, print the key; `make smoke` starts a suite and runs this 20
# times). HAVIP_CA, when set, is the CA certificate curl checks an HTTPS gateway's against
# (make compose-up's). Needs curl and python3.
#
# What a run creates it removes on every path, failures and Ctrl-C included (an EXIT trap, in
# reverse order, ignoring what is already gone): the EIP (unbound first), the HAVIP, the CVMs,
# the subnet and the VPC. A green run has removed them itself, each step checked, and leaves
# nothing behind.
set -euo pipefail
U=${1:?base URL}; KEY=${2:?API key}; CA=${HAVIP_CA:-}
[[ -z $CA || -r $CA ]] || { echo "smoke: HAVIP_CA=$CA: not a readable file" >&2; exit 2; }

# request method path [body]: sets $code and $body; fails only when curl does.
request() {
	local out
	out=$(curl -sS --max-time 30 ${CA:+--cacert "$CA"} -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' ${3:+-d "$3"} "$U$2") ||
		{ echo "smoke: $1 $2: curl failed" >&2; return 1; }
	code=${out##*$'\n'}; body=${out%$'\n'*}
}
# call method path [body]: a request that must answer 2xx.
call() {
	request "$@" || return 1
	[[ $code == 2* ]] || { echo "smoke: $1 $2: HTTP $code $body" >&2; return 1; }
}
# json expr: prints a Python expression over the last answer's JSON (d); fails when it does not
# evaluate (a missing field, say).
json() { python3 -c 'import json, sys; d = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$body"; }
# expect what got want: fails unless got equals want.
expect() { [[ $2 == "$3" ]] || { echo "smoke: $1: got '$2', want '$3'" >&2; return 1; }; }
# expect_id what id prefix: fails unless id looks like <prefix>-xxxxxxxx.
expect_id() { [[ $2 =~ ^$3-[a-z0-9]{8}$ ]] || { echo "smoke: $1: '$2' is not a $3- ID" >&2; return 1; }; }

# What this run made and has not yet removed (the EXIT trap removes it, newest first).
vpc= subnet= ins=() havip= eip= bound=
cleanup() {
	local rc=$? c i
	set +e
	trap - INT TERM
	undo() { # method path [body]: best effort; a 404 means it is gone already
		request "$@" 2>/dev/null; c=${code:-none}
		[[ $c == 2* || $c == 404 ]] || echo "smoke: cleanup: $1 $2: HTTP $c ${body:-}" >&2
		[[ $c == 2* ]] && echo "smoke: cleanup: $1 $2" >&2
	}
	[[ -n $bound ]] && undo POST "/v1/havips/$havip:disassociateAddressIp" '{}'
	[[ -n $eip ]] && undo DELETE "/v1/addresses/$eip"
	[[ -n $havip ]] && undo DELETE "/v1/havips/$havip"
	for ((i = ${#ins[@]} - 1; i >= 0; i--)); do undo DELETE "/v1/instances/${ins[i]}"; done
	[[ -n $subnet ]] && undo DELETE "/v1/subnets/$subnet"
	[[ -n $vpc ]] && undo DELETE "/v1/vpcs/$vpc"
	((rc == 0)) || echo "smoke: FAILED (exit $rc)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# This run's VPC, subnet and two CVMs, named after the run.
name=smoke-$(date +%s)-$RANDOM
call POST /v1/vpcs "{\"vpc_name\":\"$name\",\"cidr_block\":\"10.0.0.0/16\"}"
vpc=$(json 'd["vpc"]["vpc_id"]')
expect_id VPC "$vpc" vpc
call POST /v1/subnets "{\"vpc_id\":\"$vpc\",\"subnet_name\":\"web\",\"cidr_block\":\"10.0.1.0/24\"}"
subnet=$(json 'd["subnet"]["subnet_id"]')
expect_id subnet "$subnet" subnet
expect "the new subnet's gateway" "$(json 'd["subnet"]["gateway_ip_address"]')" 10.0.1.1
for n in web-1 web-2; do
	call POST /v1/instances "{\"instance_name\":\"$n\",\"subnet_id\":\"$subnet\",\"host_id\":\"host-$n\"}"
	id=$(json 'd["instance"]["instance_id"]')
	expect_id "CVM $n" "$id" ins
	ins+=("$id")
	expect "$n's primary ENI" "$(json 'd["primary_network_interface"]["primary"]')" True
done
call GET "/v1/subnets/$subnet"
expect "the subnet's free addresses" "$(json 'd["subnet_set"][0]["available_ip_address_count"]')" 251

# This run's HAVIP with its switch range, its keepalived configuration, and an EIP bound to it.
call POST /v1/havips "{\"vpc_id\":\"$vpc\",\"subnet_id\":\"$subnet\",\"havip_name\":\"$name\"}"
havip=$(json 'd["havip"]["havip_id"]')
expect_id HAVIP "$havip" havip
expect "the new HAVIP's state" "$(json 'd["havip"]["state"]')" UNBIND
vip=$(json 'd["havip"]["vip"]')
call POST "/v1/havips/$havip:associateInstance" "{\"havip_association_set\":[{\"instance_id\":\"${ins[0]}\",\"instance_type\":\"CVM\"},{\"instance_id\":\"${ins[1]}\",\"instance_type\":\"CVM\"}]}"
call GET "/v1/havips/$havip/keepalived-config"
expect "configurations" "$(json 'len(d["config_set"])')" 2
expect "the second configuration's instance" "$(json 'd["config_set"][1]["instance_id"]')" "${ins[1]}"
expect "the second configuration is a vrrp_instance for the VIP" \
	"$(json '"vrrp_instance" in d["config_set"][1]["config"] and "'"$vip"'" in d["config_set"][1]["config"]')" True
call GET "/v1/havips/$havip/keepalived-config?format=text&instance_id=${ins[1]}"
[[ $body == *"vrrp_instance havip_${havip#havip-} {"* && $body == *"unicast_peer"* ]] ||
	{ echo "smoke: the text configuration of ${ins[1]}: $body" >&2; exit 1; }
call POST /v1/addresses '{"address_name":"smoke"}'
eip=$(json 'd["address_set"][0]["address_id"]'); eipIP=$(json 'd["address_set"][0]["address_ip"]')
expect_id EIP "$eip" eip
call POST "/v1/havips/$havip:associateAddressIp" "{\"address_ip\":\"$eipIP\"}"
bound=1
call GET "/v1/havips?filter.havip-name=$name"
expect "HAVIPs named $name" "$(json 'd["total_count"]')" 1
expect "the HAVIP's EIP" "$(json 'd["havip_set"][0]["address_ip"]')" "$eipIP"
expect "the HAVIP's switch range" "$(json '[a["instance_id"] for a in d["havip_set"][0]["havip_association_set"]] == ["'"${ins[0]}"'", "'"${ins[1]}"'"]')" True
call GET "/v1/addresses/$eip"
expect "the EIP's status" "$(json 'd["address_set"][0]["address_status"]')" BIND
expect "the EIP's HAVIP" "$(json 'd["address_set"][0]["havip_id"]')" "$havip"

# The release, in order; each step checked.
call POST "/v1/havips/$havip:disassociateAddressIp" '{}'
bound=
call DELETE "/v1/addresses/$eip"
request GET "/v1/addresses/$eip"
expect "the released EIP" "$code" 404
eip=
call DELETE "/v1/havips/$havip"
request GET "/v1/havips/$havip"
expect "the deleted HAVIP" "$code" 404
deleted=$havip havip=
# The subnet refuses to go while it holds CVMs; then the CVMs, the subnet and the VPC go.
request DELETE "/v1/subnets/$subnet"
expect "the delete of a subnet with CVMs" "$code $(json 'd["reason"]')" "400 ResourceInUse"
for id in "${ins[@]}"; do
	call DELETE "/v1/instances/$id"
	request GET "/v1/instances/$id"
	expect "the deleted CVM $id" "$code" 404
done
cvms=${ins[*]} ins=()
call DELETE "/v1/subnets/$subnet"
request GET "/v1/subnets/$subnet"
expect "the deleted subnet" "$code" 404
call DELETE "/v1/vpcs/$vpc"
request GET "/v1/vpcs/$vpc"
expect "the deleted VPC" "$code" 404
echo "smoke: VPC $vpc, subnet $subnet, CVMs $cvms, HAVIP $deleted ($vip) with EIP $eipIP: created, bound, described, deleted"
