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

# die message: fails the script, naming it (PROG).
die() { echo "${PROG:-compose}: $*" >&2; exit 1; }

# rest_init: KEY (build/api-key, the account acct-demo's), for request.
rest_init() {
	[[ -r build/api-key && -r build/certs/ca.crt ]] || die "no build/api-key or build/certs: make compose-up first"
	KEY=$(<build/api-key)
	[[ -n ${PROJECT:-} ]] || compose_project
	compose_ids
}

# rest_url: the URL of the first gateway replica whose container runs.
rest_url() {
	local g
	for g in gatewayd-1 gatewayd-2; do
		case $(compose_state "$g") in healthy | starting | unhealthy | running) ;; *) continue ;; esac
		echo "https://127.0.0.1:$(docker port "${CID[$g]}" 8080/tcp | head -n 1 | sed 's/.*://')"
		return
	done
	die "no gateway replica runs"
}

# request method path [body]: sets $code and $body, through a gateway replica that runs; fails
# only when curl does. call: a request that must answer 2xx. json expr: a Python expression over the last answer's JSON (d).
request() {
	local out url
	url=$(rest_url)
	out=$(curl -sS --max-time 30 --cacert build/certs/ca.crt -X "$1" -H "Authorization: Bearer $KEY" -w '\n%{http_code}' ${3:+-d "$3"} "$url$2") ||
		die "$1 $2: curl failed"
	code=${out##*$'\n'} body=${out%$'\n'*}
}
call() {
	request "$@"
	[[ $code == 2* ]] || die "$1 $2: HTTP $code $body"
}
json() { python3 -c 'import json, sys; d = json.loads(sys.argv[2]); print(eval(sys.argv[1]))' "$1" "$body"; }
