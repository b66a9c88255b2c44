# Helpers for the end-to-end tests, sourced by each tests/e2e/*.sh.  A
# check prints "ok - NAME" or "not ok - NAME" with what differed.  Each
# test works in its own temporary folder, and every server it starts is
# recorded by PID and stopped on exit.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/bin
PATH=$BIN:$PATH
export PATH
CORPUS=${WHOOK_CORPUS:-$ROOT/../shared/corpus}
TMP=$(mktemp -d /tmp/whook-test.XXXXXX)
PIDS=
cd "$TMP" || exit 70

cleanup() {
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null
	done
	cd /
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 70' INT TERM

pass() { echo "ok - $1"; }
fail() { echo "not ok - $1${2:+: $2}"; }

# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "failed: $*"; fi
}

# check_eq NAME GOT EXPECTED
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1" "got '$2', expected '$3'"
	fi
}

# check_match NAME TEXT PATTERN: passes when TEXT contains the fixed
# string PATTERN.
check_match() {
	case $2 in
	*"$3"*) pass "$1" ;;
	*) fail "$1" "'$3' not in '$2'" ;;
	esac
}

# check_nomatch NAME TEXT PATTERN
check_nomatch() {
	case $2 in
	*"$3"*) fail "$1" "'$3' found in '$2'" ;;
	*) pass "$1" ;;
	esac
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT: waits up to 5 s for a listener on 127.0.0.1:PORT.
wait_port() {
	i=0
	while [ $i -lt 100 ]; do
		if python3 -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' \
		    "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# spawn COMMAND...: starts COMMAND in the background, stops it on exit.
spawn() {
	"$@" &
	PIDS="$PIDS $!"
	LAST_PID=$!
}

# http_status CURL_ARGS...: prints the HTTP status curl got (000 when
# none), with at most 10 s per request.
http_status() {
	curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 "$@"
}

# sql DB QUERY: prints the query's rows, fields separated by "|".  It
# waits up to 5 s for a lock, because the last connection of a writer
# that just answered may still be checkpointing the WAL as it closes.
sql() {
	sqlite3 -batch -cmd '.timeout 5000' "$1" "$2"
}

# corpus_case NAME: the folder of a case, or "" (and a "# skip" line on
# standard error, which tests/run shows) when the corpus is not beside
# the repository.
corpus_case() {
	if [ -d "$CORPUS/$1" ]; then
		echo "$CORPUS/$1"
	else
		echo "# skip: corpus case $1 not found in $CORPUS" >&2
	fi
}

# require_corpus: ends the test, with a "# skip" line, when the corpus is
# not there.
require_corpus() {
	if [ ! -d "$CORPUS" ]; then
		echo "# skip: no corpus at $CORPUS (set WHOOK_CORPUS)"
		exit 0
	fi
}
