#!/usr/bin/env bash
# Builds havip/prometheus:dev, the compose stack's Prometheus, FROM scratch (nothing can be
# pulled): Debian's /usr/bin/prometheus and /usr/bin/promtool (the healthcheck: `promtool query
# instant` answers only once Prometheus is ready), the shared libraries `ldd` lists for them
# (libc and the dynamic loader), and an empty /prometheus for the data, owned by the image's user
# (65534). The Debian package comes from scripts/install-system-deps.sh (as root; it says what to
# install otherwise). The files are staged in build/prometheus/ (.dockerignore lets it in).
#   scripts/prometheus-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
	echo "prometheus-image: no prometheus or promtool: installing the Debian package (scripts/install-system-deps.sh)" >&2
	bash scripts/install-system-deps.sh
fi
bins=("$(command -v prometheus)" "$(command -v promtool)")

root=build/prometheus/root
rm -rf build/prometheus && mkdir -p "$root/bin" build/prometheus/data
cp "${bins[@]}" "$root/bin/"
# Every library the binaries load, at the path ldd names (the loader at the path in the ELF
# header, /lib64/ld-linux-x86-64.so.2), symbolic links followed.
mapfile -t libs < <(ldd "${bins[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u)
((${#libs[@]} > 0)) || { echo "prometheus-image: ldd lists no library for ${bins[*]}" >&2; exit 1; }
for l in "${libs[@]}"; do
	mkdir -p "$root$(dirname "$l")"
	cp -L "$l" "$root$l"
done

DOCKER_BUILDKIT=0 docker build -q -f deploy/prometheus/Dockerfile -t havip/prometheus:dev . >/dev/null
echo "image havip/prometheus:dev ($("${bins[0]}" --version 2>&1 | sed -n '1s/^prometheus, //p'); ${libs[*]})"
