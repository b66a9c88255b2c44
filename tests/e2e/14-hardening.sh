#!/bin/sh
# whook-listen against malformed and hostile requests, sent as raw bytes
# through a real socket on 127.0.0.1: obs-fold, a space before the colon,
# NUL bytes in a value, trailing whitespace, Content-Length with chunked.
# Then the option checks, the log line of a failed flow, and a flow
# whose background process keeps its stdout open.
. "$(dirname "$0")/../lib.sh"

# send PORT BYTES: sends BYTES (Python escapes such as \r\n and \x00) on
# one connection and prints the status of the response, or "none".
send() {
	python3 -c 'import socket, sys
data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
words = out.split(b"\r\n", 1)[0].split()
print(words[1].decode() if len(words) > 1 else "none")' "$1" "$2"
}

# envelopes: the number of envelopes written so far.
envelopes() {
	wc -l <"$TMP/out.ndjson" | tr -d ' '
}

# header NAME: the value of header NAME in the last envelope.
header() {
	tail -n 1 "$TMP/out.ndjson" | jq -r ".[\"\$trigger\"].headers[\"$1\"]"
}

PORT=$(free_port)
spawn whook-listen --listen "$PORT" >"$TMP/out.ndjson" 2>"$TMP/listen.log"
server=$LAST_PID
check "port open" wait_port "$PORT"
check_match "listening line names the bound address" \
    "$(cat "$TMP/listen.log")" "listening on 127.0.0.1:$PORT,"

start='POST /h HTTP/1.1\r\nHost: a\r\n'
body='Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'

# reject NAME HEADERS: a request with HEADERS gets 400 and no envelope.
reject() {
	before=$(envelopes)
	check_eq "$1: 400" "$(send "$PORT" "$start$2$body")" 400
	check_eq "$1: no envelope" "$(envelopes)" "$before"
}

reject "obs-fold into the name" 'X-Webhook-: SECRET\r\n Secret\r\n'
reject "obs-fold of a value" 'X-Tag: one\r\n\ttwo\r\n'
reject "space before colon" 'X-Webhook-Secret : v\r\n'
reject "tab in the name" 'X-Webhook\tSecret: v\r\n'
reject "NUL inside a value" 'X-Webhook-Secret: S\x00junk\r\n'
reject "bare CR inside a value" 'X-Note: left\rright\r\n'
check_match "reason logged" "$(cat "$TMP/listen.log")" \
    "invalid header value: NUL"
check_nomatch "value not logged" "$(cat "$TMP/listen.log")" "junk"

# A NUL byte in the last field, followed by what looks like line ends.
before=$(envelopes)
check_eq "NUL in the last field: 400" "$(send "$PORT" \
    'POST /h HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-S: S\x00\x00\x00\x00junk\r\n\r\n{}')" \
    400
check_eq "NUL in the last field: no envelope" "$(envelopes)" "$before"

check_eq "both Content-Length and chunked: 400" "$(send "$PORT" \
    "${start}Content-Length: 2\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n2\\r\\n{}\\r\\n0\\r\\n\\r\\n")" \
    400
check_match "both lengths: reason logged" "$(cat "$TMP/listen.log")" \
    "Content-Length with Transfer-Encoding"

# Well-formed requests still pass, with their values whole.
check_eq "trailing whitespace: 200" \
    "$(send "$PORT" "${start}X-Webhook-Secret: S \\t \\r\\n$body")" 200
check_eq "trailing whitespace removed" "$(header x-webhook-secret)" "S"
check_eq "inner whitespace kept: 200" \
    "$(send "$PORT" "${start}X-Tag: a  b\\r\\n$body")" 200
check_eq "inner whitespace kept" "$(header x-tag)" "a  b"
check_eq "last field whole: 200" "$(send "$PORT" \
    'POST /h?a=%41&b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-Last: end\r\n\r\n{}')" \
    200
check_eq "last field whole" "$(header x-last)" "end"
long=$(printf '%0300d' 0 | tr 0 N)
check_eq "long header name: 200" "$(send "$PORT" \
    "${start}X-$long: one\\r\\nx-$long: two\\r\\n$body")" 200
check_eq "long header name lowercased, joined" \
    "$(header "x-$(echo "$long" | tr N n)")" "one, two"
check_eq "method in the path: 200" "$(send "$PORT" \
    'POST /x/POST HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-Last: path\r\n\r\n{}')" \
    200
check_eq "method in the path: value" "$(header x-last)" "path"
check_eq "escaped path: 200" "$(send "$PORT" \
    'POST /%50OST/%41%00 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-Last: esc\r\n\r\n{}')" \
    200
check_eq "escaped path: value" "$(header x-last)" "esc"
check_eq "bare LF lines: 200" "$(send "$PORT" \
    'POST /h HTTP/1.1\nHost: a\nContent-Length: 2\nX-Last: lf\n\n{}')" 200
check_eq "bare LF lines: value" "$(header x-last)" "lf"
kill "$server"
wait "$server" 2>/dev/null
check_nomatch "no sanitizer report" "$(cat "$TMP/listen.log")" "Sanitizer"

# usage_status NAME STATUS ARGS...: whook-listen ARGS exits STATUS, in
# at most 5 s: a listener that starts instead is stopped with status 124.
usage_status() {
	name=$1 want=$2
	shift 2
	timeout 5 whook-listen "$@" </dev/null >/dev/null 2>"$TMP/usage.err"
	check_eq "$name: exit $want" "$?" "$want"
}

usage_status "port beyond 65535" 64 --listen 127.0.0.1:99999
usage_status "port 0" 64 --listen 0
usage_status "empty listen" 64 --listen ''
usage_status "empty port" 64 --listen 127.0.0.1:
check_match "port message" "$(cat "$TMP/usage.err")" \
    "a numeric address and a port from 1 to 65535"
usage_status "port name" 64 --listen 127.0.0.1:http
usage_status "host name" 64 --listen localhost:8080
usage_status "unclosed bracket" 64 --listen '[::1:8080'
usage_status "zero max-body" 64 --max-body 0 --listen "$PORT"
usage_status "empty method" 64 --method '' --listen "$PORT"
usage_status "empty method in list" 64 --method GET,,POST --listen "$PORT"
usage_status "method with space" 64 --method 'G T' --listen "$PORT"
usage_status "method over 15 bytes" 64 --method ABCDEFGHIJKLMNOP \
    --listen "$PORT"
check_match "method message" "$(cat "$TMP/usage.err")" "invalid method"
usage_status "missing flows folder" 66 --flows "$TMP/none" --listen "$PORT"
check_match "flows message" "$(cat "$TMP/usage.err")" "$TMP/none"
: >"$TMP/file"
usage_status "flows not a folder" 64 --flows "$TMP/file" --listen "$PORT"

# A failed flow gets a log line with the reason.
mkdir flows
printf '#!/bin/sh\ncat >/dev/null\nkill -9 $$\n' >flows/killed
printf '#!/bin/sh\ncat >/dev/null\nexit 70\n' >flows/software
cat >flows/background <<'EOF'
#!/bin/sh
sleep 20 &
echo $! >"$WHOOK_TEST_TMP/background.pid"
cat
EOF
chmod +x flows/*
WHOOK_TEST_TMP=$TMP
export WHOOK_TEST_TMP
PORT=$(free_port)
spawn whook-listen --listen "$PORT" --flows flows --timeout 10 \
    2>"$TMP/flows.log"
server=$LAST_PID
wait_port "$PORT"
check_eq "killed flow 500" \
    "$(http_status -d '{}' "http://127.0.0.1:$PORT/killed")" 500
check_eq "exit 70 flow 500" \
    "$(http_status -d '{}' "http://127.0.0.1:$PORT/software")" 500
begin=$(date +%s)
check_eq "flow with background process 200" \
    "$(http_status -d '{}' "http://127.0.0.1:$PORT/background")" 200
check "answered within 3 s" test $(($(date +%s) - begin)) -le 3
if [ -s "$TMP/background.pid" ]; then
	kill "$(cat "$TMP/background.pid")" 2>/dev/null
fi
kill "$server"
wait "$server" 2>/dev/null
check_match "signal logged" "$(cat "$TMP/flows.log")" \
    "flow killed by signal 9"
check_match "exit status logged" "$(cat "$TMP/flows.log")" \
    "flow exited with status 70"
check_nomatch "flows: no sanitizer report" "$(cat "$TMP/flows.log")" \
    "Sanitizer"
