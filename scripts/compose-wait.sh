#!/usr/bin/env bash
# Waits until every long-running container of the docker-compose stack (or of the services
# named) is running and healthy, by its healthcheck, and prints how long that took.
#   scripts/compose-wait.sh [-t seconds, default 180] [service...]
# Fails, printing each container's state and its last healthcheck output, when the deadline
# passes first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/compose-lib.sh
timeout=180
if [[ ${1:-} == -t ]]; then timeout=$2; shift 2; fi
services=("$@")
if ((${#services[@]} == 0)); then # every service with a healthcheck: all but certs and etcdctl
	mapfile -t services < <(docker-compose config --services | grep -vx -e certs -e etcdctl)
fi
compose_project

start=$SECONDS
while :; do
	compose_ids
	waiting=()
	for s in "${services[@]}"; do
		[[ $(compose_state "$s") == healthy ]] || waiting+=("$s")
	done
	((${#waiting[@]} == 0)) && break
	if ((SECONDS - start >= timeout)); then
		echo "compose-wait: not healthy after ${timeout}s:" >&2
		for s in "${waiting[@]}"; do
			echo "  $s: $(compose_state "$s")" >&2
			[[ -n ${CID[$s]:-} ]] && docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}    {{.Output}}{{end}}{{end}}' "${CID[$s]}" | tail -n 3 >&2
		done
		exit 1
	fi
	sleep 1
done
echo "compose-wait: ${#services[@]} services healthy after $((SECONDS - start))s"
