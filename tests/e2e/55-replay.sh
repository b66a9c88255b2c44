#!/bin/sh
# whook-send --replay against a python3 http.server on 127.0.0.1 that
# records every request (method, path, headers, body bytes) as one JSON
# line and answers from a plan file: a line "ID STATUS,STATUS,..." gives
# the status of each attempt for the envelope ID (the last one repeats),
# where "503+1" adds "Retry-After: 1" and "200~2" answers after 2 s.
# A line "append ID SRC DEST" appends the bytes of SRC to DEST when ID
# first arrives, before the answer.  A line "echo LOG" appends each
# request to LOG as whook-listen logs it, headers lowercased.  Other
# requests get 200.  The server exits by itself after 120 s.
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
    n = attempts.get(eid, 0)
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == eid:
            statuses = parts[1].split(",")
        if len(parts) == 4 and parts[:2] == ["append", eid] and n == 0:
            with open(parts[2], "rb") as src, open(parts[3], "ab") as dst:
                dst.write(src.read())
    attempts[eid] = n + 1
    return statuses[min(n, len(statuses) - 1)]


def echo_line(handler, eid, body):
    return json.dumps({"$trigger": {
        "id": eid, "received_at": "2026-12-04T07:00:00.000Z",
        "method": handler.command, "path": handler.path,
        "headers": {k.lower(): v for k, v in handler.headers.items()},
        "raw_base64": base64.b64encode(body).decode()}}) + "\n"


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def echo(self, eid, body):
        text = open(plan).read() if os.path.exists(plan) else ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "echo":
                with open(parts[1], "a") as f:
                    f.write(echo_line(self, eid, body))

    def answer(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        eid = self.headers.get("Whook-Envelope-Id", "")
        with lock:
            spec = answer_for(eid)
            self.echo(eid, body)
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
                    "status": int(spec.split("+")[0]),
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

# want_cursor FILE LINES: the offset cursor after the first LINES lines
# of FILE.
want_cursor() {
	printf 'v2 %s %s %s %s\n' "$(head -n "$2" "$1" | wc -c | tr -d ' ')" \
	    "$2" \
	    "$(stat -c '%d %i' "$1")" \
	    "$(sed -n "$2p" "$1" | python3 -c 'import json,sys
print(json.load(sys.stdin)["$trigger"]["id"])')"
}

# ids_of FILE [FIRST [LAST]]: the ids of FILE's lines FIRST to LAST.
ids_of() {
	sed -n "${2:-1},${3:-\$}p" "$1" | python3 -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["$trigger"]["id"])'
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
check_eq "replay cursor" "$(cat "$TMP/cursor")" "$(want_cursor "$TMP/log" 100)"
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
check_match "second run counts" "$err" "0 sent, 0 failed, 0 skipped, 0 already sent"
check_eq "second run cursor kept" "$(cat "$TMP/cursor")" \
    "$(want_cursor "$TMP/log" 100)"

# Ten more logged: only those go.
python3 "$TMP/gen.py" 101 10 >>"$TMP/log"
replay --cursor "$TMP/cursor" "$URL" "$TMP/log"
check_eq "third run sends 10" "$sent" 10
check_eq "third run first id" "$(head -n 1 "$TMP/ids")" "$(id 101)"
check_eq "third run cursor" "$(cat "$TMP/cursor")" \
    "$(want_cursor "$TMP/log" 110)"

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
check_eq "400 cursor passes failed" "$(cat "$TMP/c400")" \
    "$(want_cursor "$TMP/ten" 10)"

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
check_eq "held cursor value" "$(cat "$TMP/c503")" "$(want_cursor "$TMP/log" 4)"
check_eq "held cursor others sent" "$(grep -vc "^$(id 5)" "$TMP/ids")" 109
: >"$PLAN"
replay -j 4 --cursor "$TMP/c503" "$URL" "$TMP/log"
check_eq "held cursor resent from it" "$(sort "$TMP/ids" | head -n 1)" "$(id 5)"
check_eq "held cursor now at end" "$(cat "$TMP/c503")" \
    "$(want_cursor "$TMP/log" 110)"

# -j 4 sends all with the cursor exact, out of order when slow.
for i in 1 2 3; do echo "$(id $i) 200~0.3"; done >"$PLAN"
rm -f "$TMP/cj"
replay -j 4 --cursor "$TMP/cj" "$URL" "$TMP/log"
check_eq "parallel exit status" "$rc" 0
check_eq "parallel sends all" "$(sort -u "$TMP/ids" | wc -l | tr -d ' ')" 110
check_eq "parallel all exact" "$(grep -c ' ' "$TMP/ids")" 0
check_eq "parallel out of order" "$(tail -n 3 "$TMP/ids" | sort | tr '\n' ' ')" \
    "$(id 1) $(id 2) $(id 3) "
check_eq "parallel cursor" "$(cat "$TMP/cj")" "$(want_cursor "$TMP/log" 110)"
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
check_eq "refused cursor" "$(cat "$TMP/crefused")" \
    "$(want_cursor "$TMP/ten" 10)"
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
check_eq "until holds cursor" "$(cat "$TMP/cu")" "$(want_cursor "$TMP/ten" 3)"
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
check_eq "locking run cursor" "$(cat "$TMP/clock")" \
    "$(want_cursor "$TMP/ten" 10)"
: >"$PLAN"

# Ids out of file order, as concurrent writers leave them: a 503 on the
# tenth line holds the cursor at the end of the ninth, and the next run
# sends the tenth line and every line after it, smaller ids included.
python3 -c 'import random, sys
lines = open(sys.argv[1]).readlines()
random.Random(4).shuffle(lines)
sys.stdout.write("".join(lines))' "$TMP/log" >"$TMP/shuf"
held=$(ids_of "$TMP/shuf" 10 10)
check_eq "shuffled ids out of order" \
    "$(ids_of "$TMP/shuf" 11 | awk -v h="$held" '$0 < h' | head -n 1 | wc -l)" 1
echo "$held 503" >"$PLAN"
rm -f "$TMP/cs"
replay --retries 1 --backoff 10 --cursor "$TMP/cs" "$URL" "$TMP/shuf"
cp "$REC" "$TMP/rec1"
check_eq "shuffled first run exit status" "$rc" 75
check_eq "shuffled first run cursor" "$(cat "$TMP/cs")" \
    "$(want_cursor "$TMP/shuf" 9)"
: >"$PLAN"
replay --cursor "$TMP/cs" "$URL" "$TMP/shuf"
check_eq "shuffled second run exit status" "$rc" 0
check_eq "shuffled second run sends the rest" "$(cat "$TMP/ids")" \
    "$(ids_of "$TMP/shuf" 10)"
check_match "shuffled second run counts" "$err" "101 sent, 0 failed, 0 skipped, 0 already"
check_eq "shuffled all delivered" "$(cat "$TMP/rec1" "$REC" | python3 -c '
import json, sys
print(len({r["id"] for r in map(json.loads, sys.stdin) if r["status"] == 200}))')" 110
check_eq "shuffled cursor at end" "$(cat "$TMP/cs")" \
    "$(want_cursor "$TMP/shuf" 110)"

# The same with -j 4: the cursor stops at the held line, whatever the
# order in which the requests complete.
for i in 1 2 3; do echo "$(ids_of "$TMP/shuf" $i $i) 200~0.3"; done >"$PLAN"
echo "$held 503" >>"$PLAN"
rm -f "$TMP/cs4"
replay -j 4 --retries 1 --backoff 10 --cursor "$TMP/cs4" "$URL" "$TMP/shuf"
check_eq "shuffled parallel exit status" "$rc" 75
check_eq "shuffled parallel cursor" "$(cat "$TMP/cs4")" \
    "$(want_cursor "$TMP/shuf" 9)"
: >"$PLAN"
replay -j 4 --cursor "$TMP/cs4" "$URL" "$TMP/shuf"
check_eq "shuffled parallel rest" "$(sort "$TMP/ids")" \
    "$(ids_of "$TMP/shuf" 10 | sort)"
check_eq "shuffled parallel cursor at end" "$(cat "$TMP/cs4")" \
    "$(want_cursor "$TMP/shuf" 110)"

# A rotated log: the rotated file keeps its inode, so it resumes at the
# cursor; the new file at the same path starts at 0.
python3 "$TMP/gen.py" 1 10 >"$TMP/r.log"
rm -f "$TMP/cr"
replay --cursor "$TMP/cr" "$URL" "$TMP/r.log"
python3 "$TMP/gen.py" 11 3 >>"$TMP/r.log"
mv "$TMP/r.log" "$TMP/r.log.1"
python3 "$TMP/gen.py" 21 5 >"$TMP/r.log"
replay --cursor "$TMP/cr" "$URL" "$TMP/r.log.1"
check_eq "rotated file sends its tail" "$(tr '\n' ' ' <"$TMP/ids")" \
    "$(id 11) $(id 12) $(id 13) "
check_eq "rotated file resumes quietly" "$err" \
    "whook-send: replay: 3 sent, 0 failed, 0 skipped, 0 already sent, 0 filtered out"
replay --cursor "$TMP/cr" "$URL" "$TMP/r.log"
check_eq "new log exit status" "$rc" 0
check_eq "new log starts at 0" "$(head -n 1 "$TMP/ids"):$sent" "$(id 21):5"
check_match "new log says so" "$err" \
    "whook-send: $TMP/r.log: not the file the cursor names (rotated or replaced), replaying from the start"
check_eq "new log cursor" "$(cat "$TMP/cr")" "$(want_cursor "$TMP/r.log" 5)"

# A truncated log, shorter than the cursor, and one rewritten past it in
# place: the line before the offset is another one.
python3 "$TMP/gen.py" 1 10 >"$TMP/t.log"
rm -f "$TMP/ct"
replay --cursor "$TMP/ct" "$URL" "$TMP/t.log"
ino=$(stat -c %i "$TMP/t.log")
python3 "$TMP/gen.py" 31 4 >"$TMP/t.log"
check_eq "truncated log same inode" "$(stat -c %i "$TMP/t.log")" "$ino"
replay --cursor "$TMP/ct" "$URL" "$TMP/t.log"
check_eq "truncated log starts at 0" "$(head -n 1 "$TMP/ids"):$sent" "$(id 31):4"
check_match "truncated log says so" "$err" \
    "$TMP/t.log: shorter than the cursor offset (truncated), replaying from the start"
python3 "$TMP/gen.py" 41 8 >"$TMP/t.log"
replay --cursor "$TMP/ct" "$URL" "$TMP/t.log"
check_eq "rewritten log starts at 0" "$(head -n 1 "$TMP/ids"):$sent" "$(id 41):8"
check_match "rewritten log says so" "$err" \
    "$TMP/t.log: the line before the cursor offset is not the one recorded"
check_eq "rewritten log cursor" "$(cat "$TMP/ct")" "$(want_cursor "$TMP/t.log" 8)"

# Lines appended while a run works wait for the next run.  The log is
# larger than the first read, so the run reads again after the append.
python3 "$TMP/gen.py" 1 150 >"$TMP/a.log"
python3 "$TMP/gen.py" 151 5 >"$TMP/more"
echo "append $(id 3) $TMP/more $TMP/a.log" >"$PLAN"
rm -f "$TMP/ca"
replay --cursor "$TMP/ca" "$URL" "$TMP/a.log"
check_eq "append during run happened" "$(wc -l <"$TMP/a.log" | tr -d ' ')" 155
check_eq "append during run exit status" "$rc" 0
check_eq "append during run left alone" "$sent:$(tail -n 1 "$TMP/ids")" \
    "150:$(id 150)"
check_eq "append during run cursor" "$(cat "$TMP/ca")" \
    "$(want_cursor "$TMP/a.log" 150)"
: >"$PLAN"
replay --cursor "$TMP/ca" "$URL" "$TMP/a.log"
check_eq "appended lines next run" "$(tr '\n' ' ' <"$TMP/ids")" \
    "$(id 151) $(id 152) $(id 153) $(id 154) $(id 155) "

# After a resume, messages still count lines from the start of the file.
echo '{"broken":' >>"$TMP/a.log"
replay --cursor "$TMP/ca" "$URL" "$TMP/a.log"
check_match "resumed line number" "$err" "$TMP/a.log:156: invalid JSON"
check_eq "resumed past invalid line" "$(cat "$TMP/ca")" \
    "v2 $(wc -c <"$TMP/a.log" | tr -d ' ') 156 $(stat -c '%d %i' "$TMP/a.log") -"

# An endpoint that logs into the file being replayed appends each replay
# again: the next run skips those lines, and another file's replays,
# relayed, still go.
python3 "$TMP/gen.py" 1 10 >"$TMP/e.log"
echo "echo $TMP/e.log" >"$PLAN"
rm -f "$TMP/ce"
replay --cursor "$TMP/ce" "$URL" "$TMP/e.log"
check_eq "echo first run sends 10" "$sent" 10
check_eq "echo lines logged" "$(wc -l <"$TMP/e.log" | tr -d ' ')" 20
check_match "echo first run tags" "$(cat "$REC")" '["Whook-Replay-Of", "'
replay --cursor "$TMP/ce" "$URL" "$TMP/e.log"
check_eq "echo second run sends none" "$sent" 0
check_match "echo second run counts" "$err" "0 sent, 0 failed, 0 skipped, 10 already sent"
check_eq "echo second run cursor" "$(cat "$TMP/ce")" \
    "$(want_cursor "$TMP/e.log" 20)"
: >"$PLAN"
cp "$TMP/e.log" "$TMP/relayed.log"
replay "$URL" "$TMP/relayed.log"
check_eq "relayed replays go" "$sent" 20
check_eq "relayed tag replaced" "$(grep -o 'Whook-Replay-Of", "[0-9a-f]*' "$REC" | sort -u | wc -l | tr -d ' ')" 1

# The older cursor, an id alone: the ids up to it are skipped, and the
# run writes the offset form.
echo "$(id 5)" >"$TMP/cold"
replay --cursor "$TMP/cold" "$URL" "$TMP/ten"
check_eq "old cursor sends after it" "$(head -n 1 "$TMP/ids"):$sent" "$(id 6):5"
check_match "old cursor counts" "$err" "5 sent, 0 failed, 0 skipped, 5 already sent"
check_eq "old cursor upgraded" "$(cat "$TMP/cold")" \
    "$(want_cursor "$TMP/ten" 10)"

# A pipe has no offset: the cursor is an id, and ids up to it are
# skipped.
rm -f "$TMP/cpipe"
: >"$REC"
cat "$TMP/ten" | whook-send --replay -q --cursor "$TMP/cpipe" "$URL"
check_eq "pipe exit status" "$?" 0
check_eq "pipe cursor is an id" "$(cat "$TMP/cpipe")" "$(id 10)"
: >"$REC"
cat "$TMP/ten" | whook-send --replay --cursor "$TMP/cpipe" "$URL" \
    2>"$TMP/err"
check_eq "pipe second run sends none" "$(wc -l <"$REC" | tr -d ' ')" 0
check_match "pipe second run counts" "$(cat "$TMP/err")" "10 already sent"
cp "$TMP/cold" "$TMP/cpipe2"
: >"$REC"
sed -n 6,10p "$TMP/ten" | whook-send --replay --cursor "$TMP/cpipe2" "$URL" \
    2>"$TMP/err"
check_match "pipe offset cursor message" "$(cat "$TMP/err")" \
    "stdin: not a regular file, so the cursor's offset is unused and ids up to $(id 10) are skipped"
check_match "pipe offset cursor counts" "$(cat "$TMP/err")" "0 sent, 0 failed, 0 skipped, 5 already"

# A last line without a newline may be a line still being written: with
# a cursor it waits for the next run.
head -n 2 "$TMP/ten" >"$TMP/p.log"
printf '%s' "$(sed -n 3p "$TMP/ten")" >>"$TMP/p.log"
rm -f "$TMP/cpart"
replay --cursor "$TMP/cpart" "$URL" "$TMP/p.log"
check_eq "partial line exit status" "$rc" 0
check_eq "partial line waits" "$sent" 2
check_match "partial line message" "$err" \
    "$TMP/p.log:3: no newline at the end, left for the next run"
echo >>"$TMP/p.log"
replay --cursor "$TMP/cpart" "$URL" "$TMP/p.log"
check_eq "partial line next run" "$(cat "$TMP/ids")" "$(id 3)"
check_eq "partial line cursor" "$(cat "$TMP/cpart")" \
    "$(want_cursor "$TMP/p.log" 3)"

# A cursor file that is neither form is a data error.
for bad in "v2 x 1 1 2 $(id 1)" "v2 0 1 1 2 $(id 1)" "v2 10 1 1 2" \
    "v2 10 1 2 $(id 1)" "a b"; do
	echo "$bad" >"$TMP/cbad"
	replay --cursor "$TMP/cbad" "$URL" "$TMP/ten"
	check_eq "cursor '$bad' exits 65" "$rc:$sent" 65:0
done
check_match "invalid cursor message" "$err" "$TMP/cbad: invalid cursor"

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
