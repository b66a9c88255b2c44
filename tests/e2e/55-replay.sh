#!/bin/sh
# whook-send --replay against a python3 http.server on 127.0.0.1 that
# records every request (method, path, headers, body bytes) as one JSON
# line and answers from a plan file: a line "ID STATUS,STATUS,..." gives
# the status of each attempt for the envelope ID (the last one repeats),
# where "503+1" adds "Retry-After: 1" and "200~2" answers after 2 s.
# Other requests get 200.  The server exits by itself after 120 s.
. "$(dirname "$0")/../lib.sh"

cat >"$TMP/server.py" <<'PY'
import base64, http.server, json, os, sys, threading, time

port, rec, plan = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
attempts = {}
last_plan = [""]


def answer_for(eid):
    statuses = ["200"]
    text = open(plan).read() if os.path.exists(plan) else ""
    if text != last_plan[0]:
        # A new plan counts attempts from the start.
        attempts.clear()
        last_plan[0] = text
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == eid:
            statuses = parts[1].split(",")
    n = attempts.get(eid, 0)
    attempts[eid] = n + 1
    return statuses[min(n, len(statuses) - 1)]


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        eid = self.headers.get("Whook-Envelope-Id", "")
        with lock:
            spec = answer_for(eid)
        delay = 0
        if "~" in spec:
            spec, delay = spec.split("~")
            time.sleep(float(delay))
        # Recorded when answered, so the record shows completion order.
        with lock:
            with open(rec, "a") as f:
                f.write(json.dumps({
                    "id": eid, "method": self.command, "path": self.path,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "body": base64.b64encode(body).decode(),
                    "peer": self.client_address[1],
                    "time": time.time()}) + "\n")
        retry_after = None
        if "+" in spec:
            spec, retry_after = spec.split("+")
        self.send_response(int(spec))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, *args):
        pass


threading.Timer(120, lambda: os._exit(0)).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder).serve_forever()
PY

# gen.py FIRST COUNT: prints COUNT logged envelopes numbered from FIRST,
# received one second apart from 2026-12-04T06:00:00Z.  Every fifth one
# has a body that is not UTF-8 (raw_base64 with 0xE9 bytes).
cat >"$TMP/gen.py" <<'PY'
import base64, json, sys

first, count = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + count):
    body = '{"n":%d,"s":"caf\u00e9 \\"q\\"\\n","big":12345678901234567890}' % i
    t = {"id": "01JEXAMPLE%016d" % i,
         "received_at": "2026-12-04T06:%02d:%02d.%03dZ" % (i // 60, i % 60,
                                                           i % 1000),
         "method": "POST", "path": "/hooks/gh", "query": {"n": str(i)},
         "headers": {"host": "example.test", "content-type":
                     "application/json", "content-length": "99",
                     "connection": "keep-alive", "expect": "100-continue",
                     "transfer-encoding": "chunked", "te": "trailers",
                     "proxy-authorization": "Basic c2VjcmV0",
                     "x-github-event": "push" if i % 2 else "issues",
                     "x-hub-signature-256": "sha256=%064d" % i,
                     "x-empty": ""},
         "body": None, "remote": "127.0.0.1:5000"}
    if i % 5 == 0:
        t["raw_base64"] = base64.b64encode(b"caf\xe9 %d \xe9\x00" % i).decode()
    else:
        t["raw"] = body
    print(json.dumps({"$trigger": t}, ensure_ascii=(i % 2 == 0)))
PY

# verify.py LOG RECORDS: checks that every recorded request carries the
# raw body, method and headers of the envelope its id names, and prints
# the ids, one a line, in the order they arrived.
cat >"$TMP/verify.py" <<'PY'
import base64, json, sys

want = {}
for line in open(sys.argv[1]):
    t = json.loads(line)["$trigger"]
    want[t["id"]] = t
dropped = {"host", "content-length", "connection", "keep-alive",
           "proxy-connection", "te", "trailer", "transfer-encoding",
           "upgrade", "proxy-authorization", "expect"}
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r["id"] not in want:
        print(r["id"] + " unknown")
        continue
    t = want[r["id"]]
    body = base64.b64decode(r["body"])
    raw = (base64.b64decode(t["raw_base64"]) if "raw_base64" in t
           else t["raw"].encode())
    got = {k.lower(): v for k, v in r["headers"]}
    problems = []
    if body != raw:
        problems.append("body differs")
    if r["method"] != t["method"]:
        problems.append("method " + r["method"])
    for name, value in t["headers"].items():
        if name in dropped:
            if name in got and name not in ("host", "content-length"):
                problems.append("sent " + name)
        elif got.get(name) != value:
            problems.append("header %s: %r" % (name, got.get(name)))
    if got.get("content-length") != str(len(raw)):
        problems.append("content-length %s" % got.get("content-length"))
    if "accept" in got:
        problems.append("accept added")
    print(r["id"] + (" " + "; ".join(problems) if problems else ""))
PY

REC=$TMP/rec.ndjson
PLAN=$TMP/plan
PORT=$(free_port)
spawn python3 "$TMP/server.py" "$PORT" "$REC" "$PLAN"
if ! wait_port "$PORT"; then
	fail "replay server starts" "nothing listens on 127.0.0.1:$PORT"
	exit 1
fi
URL=http://127.0.0.1:$PORT/in

# replay ARGS...: runs whook-send --replay with a fresh record, keeps the
# exit status, stderr and the verified ids.
replay() {
	: >"$REC"
	whook-send --replay "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	err=$(cat "$TMP/err")
	python3 "$TMP/verify.py" "$TMP/all.ndjson" "$REC" >"$TMP/ids"
	sent=$(wc -l <"$TMP/ids" | tr -d ' ')
}

id() {
	printf '01JEXAMPLE%016d' "$1"
}

python3 "$TMP/gen.py" 1 100 >"$TMP/log"
python3 "$TMP/gen.py" 1 200 >"$TMP/all.ndjson"

# 100 envelopes, 100 requests, each exact.
replay --cursor "$TMP/cursor" "$URL" "$TMP/log"
check_eq "replay exit status" "$rc" 0
check_eq "replay sends 100" "$sent" 100
check_eq "replay requests exact" "$(grep -c ' ' "$TMP/ids")" 0
check_eq "replay summary" "$err" \
    "whook-send: replay: 100 sent, 0 failed, 0 skipped, 0 already sent, 0 filtered out"
check_eq "replay in order" "$(cut -c1-26 "$TMP/ids" | sort -c && echo sorted)" \
    sorted
check_eq "replay cursor" "$(cat "$TMP/cursor")" "$(id 100)"
check_eq "replay stdout empty" "$(cat "$TMP/out")" ""
check_eq "replay url as given" \
    "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["path"])' "$REC")" \
    /in
check "replay no temporary left" test ! -e "$TMP/cursor.tmp"
check_eq "replay one connection" "$(python3 -c 'import json,sys
print(len({json.loads(l)["peer"] for l in open(sys.argv[1])}))' "$REC")" 1

# The same cursor again: nothing to send.
replay --cursor "$TMP/cursor" "$URL" "$TMP/log"
check_eq "second run exit status" "$rc" 0
check_eq "second run sends none" "$sent" 0
check_match "second run counts" "$err" "0 sent, 0 failed, 0 skipped, 100 already sent"

# Ten more logged: only those go.
python3 "$TMP/gen.py" 101 10 >>"$TMP/log"
replay --cursor "$TMP/cursor" "$URL" "$TMP/log"
check_eq "third run sends 10" "$sent" 10
check_eq "third run first id" "$(head -n 1 "$TMP/ids")" "$(id 101)"
check_eq "third run cursor" "$(cat "$TMP/cursor")" "$(id 110)"

# raw_base64 bodies arrive byte for byte: 0xE9 and a NUL.
python3 "$TMP/gen.py" 5 1 >"$TMP/b64"
replay "$URL" "$TMP/b64"
check_eq "base64 body sent" "$sent" 1
check_eq "base64 body exact" "$(cat "$TMP/ids")" "$(id 5)"
python3 -c 'import base64,json,sys
r = json.loads(open(sys.argv[1]).readline())
sys.stdout.buffer.write(base64.b64decode(r["body"]))' "$REC" >"$TMP/b64.got"
printf 'caf\351 5 \351\000' >"$TMP/b64.want"
check "base64 bytes" cmp -s "$TMP/b64.got" "$TMP/b64.want"

# Standard input, and a whook-check in front.
python3 "$TMP/gen.py" 1 10 >"$TMP/ten"
: >"$REC"
whook-send --replay -q "$URL" <"$TMP/ten" 2>"$TMP/err"
check_eq "stdin exit status" "$?" 0
check_eq "stdin sends 10" "$(wc -l <"$REC" | tr -d ' ')" 10
check_eq "quiet prints nothing" "$(cat "$TMP/err")" ""
if [ -x "$BIN/whook-check" ]; then
	: >"$REC"
	whook-check --jq '.headers["x-github-event"] == "push"' <"$TMP/ten" |
	    whook-send --replay -q "$URL" 2>"$TMP/err"
	check_eq "whook-check pipeline exit status" "$?" 0
	check_eq "whook-check pipeline sends odd ones" \
	    "$(python3 "$TMP/verify.py" "$TMP/all.ndjson" "$REC" | tr '\n' ' ')" \
	    "$(id 1) $(id 3) $(id 5) $(id 7) $(id 9) "
fi

# 503 with Retry-After: 1, then 200.
echo "$(id 2) 503+1,200" >"$PLAN"
start=$(date +%s.%N)
replay --retries 2 "$URL" "$TMP/ten"
end=$(date +%s.%N)
check_eq "retry after exit status" "$rc" 0
check_eq "retry after attempts" "$(grep -c "^$(id 2)" "$TMP/ids")" 2
check_match "retry after logged" "$err" \
    "$(id 2): HTTP 503, retry 1 of 2 in 1000 ms"
check "retry after waited" python3 -c "import sys; sys.exit(not $end - $start >= 1.0)"
check_match "retry after summary" "$err" "10 sent, 0 failed"

# 400 is final: one attempt, in --failed, exit 65.
echo "$(id 3) 400" >"$PLAN"
replay --retries 3 --backoff 10 --failed "$TMP/failed" --cursor "$TMP/c400" \
    "$URL" "$TMP/ten"
check_eq "400 exit status" "$rc" 65
check_eq "400 one attempt" "$(grep -c "^$(id 3)" "$TMP/ids")" 1
check_eq "400 in failed" "$(cat "$TMP/failed")" "$(sed -n 3p "$TMP/ten")"
check_match "400 message" "$err" "$(id 3): HTTP 400, rejected for good"
check_match "400 summary" "$err" "9 sent, 1 failed"
check_eq "400 cursor passes failed" "$(cat "$TMP/c400")" "$(id 10)"

# Retries exhausted on 500: in --failed, exit 75.
echo "$(id 4) 500" >"$PLAN"
rm -f "$TMP/failed"
replay --retries 2 --backoff 10 --failed "$TMP/failed" "$URL" "$TMP/ten"
check_eq "500 exit status" "$rc" 75
check_eq "500 three attempts" "$(grep -c "^$(id 4)" "$TMP/ids")" 3
check_eq "500 in failed" "$(cat "$TMP/failed")" "$(sed -n 4p "$TMP/ten")"
check_match "500 message" "$err" "$(id 4): HTTP 500, failed after 3 attempts"

# A 503 without --failed holds the cursor before it, with -j 4.
echo "$(id 5) 503" >"$PLAN"
rm -f "$TMP/c503"
replay -j 4 --retries 1 --backoff 10 --cursor "$TMP/c503" "$URL" "$TMP/log"
check_eq "held cursor exit status" "$rc" 75
check_eq "held cursor value" "$(cat "$TMP/c503")" "$(id 4)"
check_eq "held cursor others sent" "$(grep -vc "^$(id 5)" "$TMP/ids")" 109
: >"$PLAN"
replay -j 4 --cursor "$TMP/c503" "$URL" "$TMP/log"
check_eq "held cursor resent from it" "$(sort "$TMP/ids" | head -n 1)" "$(id 5)"
check_eq "held cursor now at end" "$(cat "$TMP/c503")" "$(id 110)"

# -j 4 sends all with the cursor exact, out of order when slow.
for i in 1 2 3; do echo "$(id $i) 200~0.3"; done >"$PLAN"
rm -f "$TMP/cj"
replay -j 4 --cursor "$TMP/cj" "$URL" "$TMP/log"
check_eq "parallel exit status" "$rc" 0
check_eq "parallel sends all" "$(sort -u "$TMP/ids" | wc -l | tr -d ' ')" 110
check_eq "parallel all exact" "$(grep -c ' ' "$TMP/ids")" 0
check_eq "parallel out of order" "$(tail -n 3 "$TMP/ids" | sort | tr '\n' ' ')" \
    "$(id 1) $(id 2) $(id 3) "
check_eq "parallel cursor" "$(cat "$TMP/cj")" "$(id 110)"
: >"$PLAN"

# A refused port: every envelope fails and is kept.
CLOSED=$(free_port)
rm -f "$TMP/failed"
replay --retries 1 --backoff 10 --failed "$TMP/failed" \
    --cursor "$TMP/crefused" "http://127.0.0.1:$CLOSED/" "$TMP/ten"
check_eq "refused exit status" "$rc" 75
check "refused all in failed" cmp -s "$TMP/failed" "$TMP/ten"
check_match "refused message" "$err" \
    "$(id 1): Connection refused, failed after 2 attempts"
check_match "refused summary" "$err" "0 sent, 10 failed"
check_eq "refused cursor" "$(cat "$TMP/crefused")" "$(id 10)"
replay --failed "$TMP/failed2" "$URL" "$TMP/failed"
check_eq "failed file replays" "$sent:$rc" 10:0

# --since and --until on received_at: [since, until).
replay --since 2026-12-04T06:00:05Z --until @1796364008 "$URL" "$TMP/ten"
check_eq "since until ids" "$(tr '\n' ' ' <"$TMP/ids")" \
    "$(id 5) $(id 6) $(id 7) "
check_match "since until counted" "$err" "3 sent, 0 failed, 0 skipped, 0 already sent, 7 filtered out"
replay --since 1796364006 "$URL" "$TMP/ten"
check_eq "since seconds" "$sent" 5
replay --since 2026-12-04T07:00:07.500+01:00 "$URL" "$TMP/ten"
check_eq "since with offset and fraction" "$(head -n 1 "$TMP/ids")" "$(id 8)"
rm -f "$TMP/cu"
replay --until 2026-12-04T06:00:04Z --cursor "$TMP/cu" "$URL" "$TMP/ten"
check_eq "until sends before" "$sent" 3
check_eq "until holds cursor" "$(cat "$TMP/cu")" "$(id 3)"
replay --cursor "$TMP/cu" "$URL" "$TMP/ten"
check_eq "until rest later" "$(head -n 1 "$TMP/ids"):$sent" "$(id 4):7"

# Lines that are no envelope are skipped, counted and named.
{
	sed -n 1p "$TMP/ten"
	echo '{"broken":'
	echo '[1,2]'
	echo '{"$trigger":{"id":"01JX","method":"POST"}}'
	echo '{"$trigger":{"raw":"x"}}'
	echo
	sed -n 2p "$TMP/ten"
	echo '{"$trigger":{"id":"01JY","raw":"x","headers":{"bad name":"v"}}}'
	echo '{"$trigger":{"id":"01JZ","raw_base64":"***"}}'
	printf '%s' "$(sed -n 3p "$TMP/ten")"
} >"$TMP/mixed"
replay "$URL" "$TMP/mixed"
check_eq "invalid lines exit status" "$rc" 0
check_eq "invalid lines others sent" "$sent" 3
check_match "invalid lines summary" "$err" "3 sent, 0 failed, 6 skipped"
check_match "invalid json named" "$err" "$TMP/mixed:2: invalid JSON"
check_match "not an object named" "$err" "$TMP/mixed:3: not an envelope: not a JSON object, skipped"
check_match "no raw named" "$err" "$TMP/mixed:4: not an envelope: no raw or raw_base64 string, skipped"
check_match "no id named" "$err" "$TMP/mixed:5: not an envelope: no \$trigger.id string"
check_match "bad header named" "$err" "$TMP/mixed:8: headers: invalid header name"
check_match "bad base64 named" "$err" "$TMP/mixed:9: raw_base64: invalid base64"

# --path: the logged path and query on URL's origin.
cat >"$TMP/pathed" <<'JSON'
{"$trigger":{"id":"01JP","method":"PUT","path":"/hooks/a%20b/../c","query":{"q":"a b&c","tag":["x","y"],"e":""},"headers":{},"raw":""}}
{"$trigger":{"id":"01JQ","method":"GET","path":"/plain","headers":{"accept":"text/plain"},"raw":""}}
JSON
replay --path "http://127.0.0.1:$PORT/ignored?x=1" "$TMP/pathed"
check_eq "path exit status" "$rc" 0
check_eq "path and query" "$(python3 -c 'import json,sys
for l in open(sys.argv[1]): r = json.loads(l); print(r["method"], r["path"])' "$REC" | tr '\n' '|')" \
    "PUT /hooks/a%20b/../c?q=a%20b%26c&tag=x&tag=y&e=|GET /plain|"
check_match "get keeps accept" "$(cat "$REC")" '["accept", "text/plain"]'

# A second run while the first holds the lock exits 75 at once.
echo "$(id 1) 200~2" >"$PLAN"
rm -f "$TMP/clock"
whook-send --replay -q --cursor "$TMP/clock" "$URL" "$TMP/ten" \
    2>"$TMP/err1" &
first=$!
sleep 0.5
start=$(date +%s)
whook-send --replay --cursor "$TMP/clock" "$URL" "$TMP/ten" 2>"$TMP/err2"
check_eq "locked run exits 75" "$?" 75
check_eq "locked run at once" "$(($(date +%s) - start < 2))" 1
check_match "locked run message" "$(cat "$TMP/err2")" \
    "$TMP/clock.lock: locked by another replay, try again later"
wait "$first"
check_eq "locking run exit status" "$?" 0
check_eq "locking run cursor" "$(cat "$TMP/clock")" "$(id 10)"
: >"$PLAN"

# Files that cannot be used, and misuse.
replay "$URL" "$TMP/missing"
check_eq "missing input exits 66" "$rc" 66
replay --cursor "$TMP/no/such/dir/cursor" "$URL" "$TMP/ten"
check_eq "unwritable cursor exits 73" "$rc" 73
check_eq "unwritable cursor sends none" "$sent" 0
replay --failed "$TMP/no/such/dir/failed" "$URL" "$TMP/ten"
check_eq "unwritable failed exits 73" "$rc" 73
printf 'secret\n' >"$TMP/s"
for args in "--sign github --secret @$TMP/s" "-d x" "-X PUT" "-H X-A:1" \
    "--retries -1" "--retries x" "--backoff 70000" "-j 0" "-j 65" \
    "--since yesterday" "--until 2026-13-01T00:00:00Z" \
    "--since 20 --until 10"; do
	# shellcheck disable=SC2086
	replay $args "$URL" "$TMP/ten"
	check_eq "replay $args exits 64" "$rc:$sent" 64:0
done
replay "$URL" "$TMP/ten" extra
check_eq "replay extra argument exits 64" "$rc" 64
whook-send --cursor "$TMP/c" "$URL" >/dev/null 2>"$TMP/err"
check_eq "cursor without replay exits 64" "$?" 64
check_match "cursor without replay message" "$(cat "$TMP/err")" "need --replay"
whook-send -h >"$TMP/out"
check_match "help shows replay" "$(cat "$TMP/out")" "whook-send --replay"
