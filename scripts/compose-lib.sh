# Sourced by the compose scripts: the stack's containers by service name, found with one docker
# call (docker-compose itself takes a second or more per call).

# compose_project: sets PROJECT, the compose project's name (COMPOSE_PROJECT_NAME, or the one
# docker-compose gave the stack's containers).
compose_project() {
	PROJECT=${COMPOSE_PROJECT_NAME:-}
	[[ -n $PROJECT ]] && return
	local any
	any=$(docker-compose ps -q | sed -n 1p) # sed reads it all: no SIGPIPE under pipefail
	[[ -n $any ]] || { echo "no docker-compose stack here: make compose-up" >&2; return 1; }
	PROJECT=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$any")
}

# compose_ids: sets CID[service] to the ID of each service's container (one-off containers, as
# docker-compose run makes, left out).
declare -A CID
compose_ids() {
	CID=()
	local s id
	while read -r s id; do CID[$s]=$id; done < <(docker ps -a \
		--filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.oneoff=False \
		--format '{{.Label "com.docker.compose.service"}} {{.ID}}')
}

# compose_state service: healthy, starting, unhealthy (its healthcheck's status), running (no
# healthcheck), exited, … or none (no container).
compose_state() {
	local id=${CID[$1]:-}
	[[ -n $id ]] || { echo none; return; }
	docker inspect -f '{{if eq .State.Status "running"}}{{if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo none
}
