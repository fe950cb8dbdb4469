#!/usr/bin/env bash
# Installs the Debian packages the tests use (keepalived for the ARP end-to-end test, iproute2 for
# network namespaces, nftables to split VRRP between them), when they are missing and this is a
# Debian machine where we are root.
set -euo pipefail
need=()
command -v keepalived >/dev/null || need+=(keepalived)
command -v ip >/dev/null || need+=(iproute2)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v nft >/dev/null || need+=(nftables)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]})" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
