#!/bin/sh
# whook-listen with flows: how a request path picks a flow under --flows,
# how a flow's outcome and exit status become the HTTP status, --async,
# --respond, --timeout, the limits, the log line, SIGTERM and the option
# errors.  The flows are small sh scripts, so no other whook program is
# needed.
. "$(dirname "$0")/../lib.sh"

mkdir -p flows/hooks flows/.git
cat >flows/echo <<'EOF'
#!/bin/sh
cat
EOF
cat >flows/hooks/github <<'EOF'
#!/bin/sh
cat
EOF
cat >flows/last <<'EOF'
#!/bin/sh
jq -c '. + {"$last": {"n": .["$trigger"].body.n,
    "outcomes": env.WHOOK_OUTCOMES}}'
EOF
cat >flows/reject <<'EOF'
#!/bin/sh
jq -c '. + {"$error": {"status": 401, "step": "sh", "reason": "no"}}'
exit 1
EOF
for code in 1 3 64 65 69 75; do
	printf '#!/bin/sh\ncat >/dev/null\nexit %s\n' "$code" >"flows/exit$code"
done
cat >flows/signal <<'EOF'
#!/bin/sh
cat >/dev/null
kill -9 $$
EOF
cat >flows/slow <<'EOF'
#!/bin/sh
sleep 60 &
echo $! >"$WHOOK_TEST_TMP/slow.pid"
wait
EOF
cat >flows/late <<'EOF'
#!/bin/sh
sleep 1
cat >>"$WHOOK_TEST_TMP/late.ndjson"
EOF
cat >flows/marker <<'EOF'
#!/bin/sh
touch "$WHOOK_TEST_TMP/marker"
cat
EOF
printf '#!/bin/sh\ncat\n' >flows/plain
printf '#!/bin/sh\ncat\n' >flows/.hidden
printf '#!/bin/sh\ncat\n' >flows/.git/config
chmod +x flows/* flows/hooks/* flows/.hidden flows/.git/config
chmod -x flows/plain
WHOOK_TEST_TMP=$TMP
export WHOOK_TEST_TMP

# start NAME OPTION...: starts whook-listen --listen on a free port with
# its stderr in NAME.log; sets PORT, URL and SERVER.
start() {
	name=$1 log=$TMP/$1.log
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	spawn whook-listen --listen "127.0.0.1:$PORT" "$@" \
	    >"$TMP/$name.ndjson" 2>"$log"
	SERVER=$LAST_PID
	wait_port "$PORT" || fail "server on $PORT" "not listening"
}

stop() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null
}

# dead PID: passes when PID is gone or a zombie that awaits its reaper.
dead() {
	case $(ps -o stat= -p "$1") in
	'' | Z*) return 0 ;;
	*) return 1 ;;
	esac
}

# post PATH [JSON]: posts JSON, by default {"n": 1}, to PATH.
post() {
	body=${2:-'{"n": 1}'}
	http_status -H 'Content-Type: application/json' -d "$body" "$URL$1"
}

# Options and modes.
out=$(whook-listen --help)
check_eq "help exit 0" "$?" 0
check_match "help is usage" "$out" "usage: whook-listen"
check_match "help lists --max-body" "$out" "--max-body"
check_match "version" "$(whook-listen --version)" "whook-listen 0."
whook-listen --bogus 2>"$TMP/err" </dev/null
check_eq "unknown option exit 64" "$?" 64
check_match "unknown option usage" "$(cat "$TMP/err")" "usage:"
whook-listen </dev/null 2>"$TMP/err"
check_eq "stdin not a socket exit 64" "$?" 64
check_match "stdin not a socket reason" "$(cat "$TMP/err")" \
    "stdin is not a connected socket"
whook-listen --flows flows -- cat </dev/null 2>/dev/null
check_eq "flows and command exit 64" "$?" 64
whook-listen --max-body 12q </dev/null 2>/dev/null
check_eq "bad max-body exit 64" "$?" 64
whook-listen --respond all </dev/null 2>/dev/null
check_eq "bad respond exit 64" "$?" 64
whook-listen --timeout 0 </dev/null 2>/dev/null
check_eq "zero timeout exit 64" "$?" 64
whook-listen --async --respond last -- cat </dev/null 2>/dev/null
check_eq "async with respond exit 64" "$?" 64
whook-listen --listen 127.0.0.1:notaport 2>/dev/null </dev/null
check_eq "port name exit 64" "$?" 64
PORT=$(free_port)
spawn whook-listen --listen "127.0.0.1:$PORT" 2>/dev/null >/dev/null
wait_port "$PORT"
whook-listen --listen "127.0.0.1:$PORT" 2>"$TMP/inuse.err" </dev/null
check_eq "port in use exit 69" "$?" 69
check_match "port in use message" "$(cat "$TMP/inuse.err")" \
    "Address already in use"
kill "$LAST_PID"
wait "$LAST_PID" 2>/dev/null

# Flows and outcomes.
start flows --flows flows --timeout 2
check_eq "flow 200" "$(post /echo)" 200
check_eq "default body keys" "$(jq -c 'keys' "$TMP/body")" \
    '["id","status"]'
check_eq "default body status" "$(jq .status "$TMP/body")" 200
check_eq "default body id" "$(jq -r '.id | length' "$TMP/body")" 26
check_eq "nested flow 200" "$(post /hooks/github)" 200
check_eq "error status wins" "$(post /reject)" 401
check_eq "exit 1 is 403" "$(post /exit1)" 403
check_eq "exit 3 is 500" "$(post /exit3)" 500
check_eq "exit 64 is 500" "$(post /exit64)" 500
check_eq "exit 65 is 422" "$(post /exit65)" 422
check_eq "exit 69 is 503" "$(post /exit69)" 503
check_eq "exit 75 is 503" "$(post /exit75)" 503
check_eq "signal is 500" "$(post /signal)" 500
check_eq "unknown flow 404" "$(post /nothing)" 404
check_eq "folder 404" "$(post /hooks)" 404
check_eq "hidden 404" "$(post /.hidden)" 404
check_eq "hidden folder 404" "$(post /.git/config)" 404
check_eq "not executable 404" "$(post /plain)" 404
check_eq "dot dot 404" "$(http_status --path-as-is -d x \
    "$URL/hooks/../echo")" 404
check_eq "encoded slash 404" "$(post /hooks%2Fgithub)" 404
check_eq "trailing slash 404" "$(post /hooks/github/)" 404
check_eq "root 404" "$(post /)" 404
check_eq "encoded name found" "$(post /%65cho)" 200
check_eq "GET 405" "$(http_status "$URL/echo")" 405
allow=$(curl -s -i --max-time 10 "$URL/echo" | tr -d '\r' |
    grep -i '^allow:')
check_eq "405 Allow header" "$allow" "Allow: POST"
check_eq "GET unknown path 404" "$(http_status "$URL/nothing")" 404
check_eq "gzip 415" "$(http_status -H 'Content-Encoding: gzip' -d x \
    "$URL/echo")" 415
rm -f "$TMP/marker"
check_eq "invalid JSON 400" "$(post /marker '{"n":')" 400
check "invalid JSON runs no flow" test ! -e "$TMP/marker"
begin=$(date +%s)
check_eq "timeout 504" "$(post /slow)" 504
check "timeout within 4 s" test $(($(date +%s) - begin)) -le 4
sleep 0.2
check "timeout killed the group" dead "$(cat slow.pid)"
curl -s -o /dev/null --max-time 10 -H 'X-Secret-Token: tok-93f1a7' \
    -d x "$URL/echo?page=2"
stop
log=$(cat "$TMP/flows.log")
check_match "log line" "$log" " POST /echo 200 "
check_match "log line ms and size" "$log" " ms 1 bytes 127.0.0.1:"
check_match "log timeout reason" "$log" "flow timed out after 2 s"
check_nomatch "log has no header value" "$log" "tok-93f1a7"
check_nomatch "log has no query" "$log" "page=2"
check_match "log stop" "$log" "stopping on signal 15"
check_match "log 404 reason" "$log" ": no flow for the path /nothing in "
check_match "log 405 reason" "$log" ": method GET not allowed: see --method"
check_match "log 415 reason" "$log" \
    ": Content-Encoding not supported: send the body unencoded"

# --quiet: only warnings and errors, no line for each request.
start quiet --flows flows --quiet --accept-id
check_eq "quiet 200" "$(post /echo)" 200
check_eq "quiet accepted id 200" "$(http_status \
    -H 'Whook-Envelope-Id: 01JFX5RSM3YQ8T0B2C4D6E8G01' -d x "$URL/echo")" 200
check_eq "quiet invalid JSON 400" "$(post /echo '{"n":')" 400
stop
log=$(cat "$TMP/quiet.log")
check_nomatch "quiet no request line" "$log" " POST /echo 200 "
check_nomatch "quiet no note of the id" "$log" "id taken"
check_nomatch "quiet no listening note" "$log" "listening on"
check_match "quiet keeps the error" "$log" ": invalid JSON body: "

# A NUL and digits is how the programs carry a big integer, so no body
# may give such a string.  A body with a NUL byte goes as raw_base64, and
# a form field with one is invalid, as is such a JSON string.
start nul
printf 'a\000123' >nul.bin
check_eq "NUL body 200" "$(http_status -H 'Content-Type: text/plain' \
    --data-binary @nul.bin "$URL/x")" 200
check_eq "NUL form field 400" "$(http_status -d 'a=%00123' "$URL/x")" 400
printf 'a=x&b=\00012' >nul.form
check_eq "raw NUL in a form 400" "$(http_status --data-binary @nul.form \
    -H 'Content-Type: application/x-www-form-urlencoded' "$URL/x")" 400
check_eq "NaN in JSON 400" "$(post /x '{"amount": NaN}')" 400
check_eq "NUL and digits JSON 400" "$(post /x '{"s": "\u0000123"}')" 400
check_eq "NUL inside JSON string 200" "$(post /x '{"s": "a\u0000b"}')" 200
stop
check_eq "NUL body as raw_base64" \
    "$(head -n 1 "$TMP/nul.ndjson" | jq -c '.["$trigger"] |
	[has("raw"), (.raw_base64 | @base64d | length), .body]')" \
    '[false,5,null]'
check_eq "NUL inside JSON string kept" \
    "$(tail -n 1 "$TMP/nul.ndjson" | jq -c '.["$trigger"].body.s')" \
    '"a\u0000b"'
check_match "NUL form field reason" "$(cat "$TMP/nul.log")" \
    "a field value contains a NUL byte"

# --respond.
start respond --flows flows --respond last
check_eq "respond last 200" "$(post /last '{"n": 7}')" 200
check_eq "respond last body" "$(jq -c . "$TMP/body")" \
    '{"n":7,"outcomes":"1"}'
stop
start output --respond output -- sh -c 'cat >/dev/null; echo hello'
check_eq "respond output 200" "$(post /x)" 200
check_eq "respond output body" "$(cat "$TMP/body")" hello
stop

# --async: 202 at once, the flow finishes later.
rm -f "$TMP/late.ndjson"
start async --flows flows --async
begin=$(date +%s)
check_eq "async 202" "$(post /late)" 202
check "async answers before the flow ends" test ! -e "$TMP/late.ndjson"
id=$(jq -r .id "$TMP/body")
sleep 2
check_eq "async flow got the envelope" \
    "$(jq -r '.["$trigger"].id' "$TMP/late.ndjson")" "$id"
stop
check_match "async outcome logged" "$(cat "$TMP/async.log")" \
    "$id flow finished: status 200"

# Limits.
start limits --max-body 1k --read-timeout 1 --max-header 4k
head -c 2000 /dev/zero | tr '\0' a >big
check_eq "content-length over max 413" "$(http_status \
    -H 'Content-Type: text/plain' --data-binary @big "$URL/x")" 413
check_eq "chunked over max 413" "$(http_status -H 'Content-Type: text/plain' \
    -H 'Transfer-Encoding: chunked' --data-binary @big "$URL/x")" 413
head -c 3000 /dev/zero | tr '\0' a >bigger
check_eq "chunked over twice max closed" "$(http_status \
    -H 'Content-Type: text/plain' -H 'Transfer-Encoding: chunked' \
    --data-binary @bigger "$URL/x")" 000
check_eq "body at max 200" "$(http_status -H 'Content-Type: text/plain' \
    --data-binary "$(head -c 1024 big)" "$URL/x")" 200
large=$(head -c 8000 /dev/zero | tr '\0' v)
status=$(http_status -H "X-Large: $large" -d x "$URL/x")
check_eq "header over max-header 4xx" "${status%??}" 4
begin=$(date +%s)
python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\n")
s.settimeout(5)
try:
    s.recv(100)
except OSError:
    pass' "$PORT"
check "read timeout closes within 4 s" test $(($(date +%s) - begin)) -le 4
check_eq "two Content-Lengths 400" "$(http_status -H 'Content-Length: 1' \
    -H 'Content-Length: 2' -d x "$URL/x")" 400
stop
log=$(cat "$TMP/limits.log")
check_match "log 413 reason" "$log" ": body over --max-body (1024 bytes)"
check_match "log chunked 413 size" "$log" " ms 2000 bytes "
check_match "log two Content-Lengths reason" "$log" \
    ": invalid Content-Length: two different values"

# A port alone, --async and a command, as whook-listen(1) shows.
PORT=$(free_port)
spawn whook-listen --listen "$PORT" --async -- sh -c 'cat >>queue.ndjson' \
    2>"$TMP/queue.log"
wait_port "$PORT"
check_eq "port alone async 202" "$(http_status -d x \
    "http://127.0.0.1:$PORT/x")" 202
sleep 0.5
check_eq "command queued the envelope" "$(jq -c '.["$trigger"].body' \
    queue.ndjson)" '{"x":""}'

# --receive-log: each envelope appended before the response, and SIGHUP
# reopens the file after logrotate moved it.
start receive --flows flows --receive-log "$TMP/recv.ndjson"
check_eq "receive log 200" "$(post /echo)" 200
id=$(jq -r .id "$TMP/body")
check_eq "receive log has the envelope" \
    "$(jq -r '.["$trigger"].id' "$TMP/recv.ndjson")" "$id"
check_eq "receive log mode 0600" "$(stat -c %a "$TMP/recv.ndjson")" 600
mv "$TMP/recv.ndjson" "$TMP/recv.1.ndjson"
kill -HUP "$SERVER"
sleep 0.3
check_eq "receive log after SIGHUP 200" "$(post /hooks/github)" 200
check_eq "receive log reopened" \
    "$(jq -r '.["$trigger"].path' "$TMP/recv.ndjson")" /hooks/github
check_eq "receive log old file kept" "$(wc -l <"$TMP/recv.1.ndjson")" 1
stop
whook-listen --receive-log "$TMP/no/such/dir/log" -- cat </dev/null \
    2>/dev/null
check_eq "receive log cannot open exit 73" "$?" 73

# SIGTERM lets a request in progress finish.
start term -- sh -c 'sleep 1; cat'
http_status -d x "$URL/x" >"$TMP/term.status" &
client=$!
sleep 0.4
kill -TERM "$SERVER"
wait "$SERVER"
check_eq "SIGTERM exit 0" "$?" 0
wait "$client"
check_eq "SIGTERM request finished" "$(cat "$TMP/term.status")" 200

# IPv6 loopback, where the machine has it.
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
    2>/dev/null; then
	PORT=$(free_port)
	spawn whook-listen --listen "[::1]:$PORT" >"$TMP/v6.ndjson" \
	    2>"$TMP/v6.log"
	sleep 0.5
	check_eq "ipv6 200" "$(http_status -d x "http://[::1]:$PORT/x")" 200
	check_match "ipv6 remote" \
	    "$(jq -r '.["$trigger"].remote' "$TMP/v6.ndjson")" "[::1]:"
fi

# inetd mode: keep-alive on the one connection, --async waits for its
# flow, and stdout that is the connection needs a flow.
PORT=$(free_port)
spawn systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
    "$BIN/whook-listen" --flows "$TMP/flows" --async 2>"$TMP/inetd.log"
wait_port "$PORT"
got=$(curl -s -o /dev/null -w '%{http_code} ' --max-time 10 -d x \
    "http://127.0.0.1:$PORT/echo" --next -s -o /dev/null \
    -w '%{http_code}' --max-time 10 -d y "http://127.0.0.1:$PORT/late")
check_eq "inetd keep-alive two answers" "$got" "202 202"
sleep 2
log=$(cat "$TMP/inetd.log")
check_match "inetd async flow waited for" "$log" \
    "flow finished: status 200"
# Two connections: the port probe and curl's one for both requests.
check_eq "inetd keep-alive one connection" \
    "$(grep -c 'Connection from' "$TMP/inetd.log")" 2
PORT=$(free_port)
spawn systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
    "$BIN/whook-listen" 2>"$TMP/inetd2.log"
wait_port "$PORT"
check_eq "inetd without flow no answer" "$(http_status -d x \
    "http://127.0.0.1:$PORT/x")" 000
check_match "inetd without flow reason" "$(cat "$TMP/inetd2.log")" \
    "stdout is the connection"

check_nomatch "no sanitizer report" "$(cat "$TMP"/*.log)" "Sanitizer"
