#!/usr/bin/env bash
# Installs the Debian packages the tests use (keepalived for the ARP end-to-end test, iproute2 for
# network namespaces, nftables to split VRRP between them, prometheus and its promtool for the
# metrics test and the alerting rules' tests, chromium for the web console's browser test), when
# they are missing and this is a Debian machine where we are root.
set -euo pipefail
need=()
command -v keepalived >/dev/null || need+=(keepalived)
command -v ip >/dev/null || need+=(iproute2)
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v nft >/dev/null || need+=(nftables)
command -v strace >/dev/null || need+=(strace) # the fault suite's slow disk (syscall delay injection)
# Debian 12's Prometheus 2.42 (the tests start their own, on free loopback ports; none of the
# recommended exporters).
lean=()
{ command -v prometheus && command -v promtool; } >/dev/null || lean+=(prometheus)
# Debian's chromium, driven headless by the console's browser test (suite/console_test.go), and
# a Chinese font for its screenshots of the 简体中文 pages.
command -v chromium >/dev/null || lean+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || lean+=(fonts-wqy-zenhei)
[ $((${#need[@]} + ${#lean[@]})) -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "missing ${need[*]} ${lean[*]}: install them (Debian: apt-get install ${need[*]} ${lean[*]})" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
[ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
[ ${#lean[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
