#!/usr/bin/env bash
# The README's console flow over REST against a running stack, checking each answer:
#   scripts/smoke.sh http://127.0.0.1:8080 <api key>
# (make run, or make compose-up, print the key). Needs curl and python3.
set -euo pipefail
U=${1:?base URL}; KEY=${2:?API key}
H="Authorization: Bearer $KEY"
call() { # method path [body] → prints the body; fails on a non-2xx status
	local out code
	out=$(curl -sS -X "$1" -H "$H" -w '\n%{http_code}' ${3:+-d "$3"} "$U$2")
	code=${out##*$'\n'}; out=${out%$'\n'*}
	if [[ $code != 2* ]]; then echo "$1 $2: $code $out" >&2; exit 1; fi
	printf '%s' "$out"
}
get() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
n=$RANDOM
vpc=$(call POST /v1/vpcs '{"vpc_name":"smoke","cidr_block":"10.0.0.0/16"}' | get 'd["vpc"]["vpc_id"]')
subnet=$(call POST /v1/subnets "{\"vpc_id\":\"$vpc\",\"subnet_name\":\"web\",\"cidr_block\":\"10.0.$((n % 200)).0/24\"}" | get 'd["subnet"]["subnet_id"]')
ins1=$(call POST /v1/instances "{\"instance_name\":\"web-1\",\"subnet_id\":\"$subnet\",\"host_id\":\"host-a\"}" | get 'd["instance"]["instance_id"]')
ins2=$(call POST /v1/instances "{\"instance_name\":\"web-2\",\"subnet_id\":\"$subnet\",\"host_id\":\"host-b\"}" | get 'd["instance"]["instance_id"]')
havip=$(call POST /v1/havips "{\"vpc_id\":\"$vpc\",\"subnet_id\":\"$subnet\",\"havip_name\":\"smoke-$n\"}" | get 'd["havip"]["havip_id"]')
call POST "/v1/havips/$havip:associateInstance" "{\"havip_association_set\":[{\"instance_id\":\"$ins1\",\"instance_type\":\"CVM\"},{\"instance_id\":\"$ins2\",\"instance_type\":\"CVM\"}]}" >/dev/null
call GET "/v1/havips/$havip/keepalived-config" | get 'd["config_set"][1]["config"]' | grep -q vrrp_instance
eip=$(call POST /v1/addresses '{"address_name":"smoke"}')
eipID=$(echo "$eip" | get 'd["address_set"][0]["address_id"]'); eipIP=$(echo "$eip" | get 'd["address_set"][0]["address_ip"]')
call POST "/v1/havips/$havip:associateAddressIp" "{\"address_ip\":\"$eipIP\"}" >/dev/null
[[ $(call GET "/v1/havips?filter.havip-name=smoke-$n" | get 'd["havip_set"][0]["address_ip"]') == "$eipIP" ]]
[[ $(call GET "/v1/addresses/$eipID" | get 'd["address_set"][0]["address_status"]') == BIND ]]
call POST "/v1/havips/$havip:disassociateAddressIp" '{}' >/dev/null
call DELETE "/v1/addresses/$eipID" >/dev/null
call DELETE "/v1/havips/$havip" >/dev/null
echo "smoke: VPC $vpc, subnet $subnet, CVMs $ins1 $ins2, HAVIP $havip with EIP $eipIP: created, bound, described, released"
