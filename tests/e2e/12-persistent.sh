#!/bin/sh
# whook-listen --persistent: flows started once and fed many envelopes.
# The in-process transactions flow gives inetd mode's statuses and keeps
# every row under 300 concurrent requests and under SIGTERM.  External
# sh flows show the restart after a flow dies (503, never a hang),
# --max-inflight (503 with Retry-After), --timeout (504), and systemd's
# Accept=no through systemd-socket-activate.
. "$(dirname "$0")/../lib.sh"

mkdir cred flows
secret=s3cr3t-$$-persistent
printf '%s\n' "$secret" >cred/transactions.secret
CREDENTIALS_DIRECTORY=$TMP/cred
export CREDENTIALS_DIRECTORY
cp "$ROOT/flows.d/transactions" flows/transactions
cat >flows/echo <<'EOF2'
#!/bin/sh
echo $$ >>"$WHOOK_TEST_TMP/echo.pids"
cat
EOF2
cat >flows/reject <<'EOF2'
#!/bin/sh
jq --unbuffered -c '. + {"$error": {"status": 401, "step": "sh",
    "reason": "no"}}'
EOF2
cat >flows/late <<'EOF2'
#!/bin/sh
jq --unbuffered -c '. + {"$error": {"status": 504, "step": "sh",
    "reason": "upstream timed out"}}'
EOF2
cat >flows/slow <<'EOF2'
#!/bin/sh
echo $$ >>"$WHOOK_TEST_TMP/slow.pids"
while IFS= read -r line; do
	sleep 0.05
	printf '%s\n' "$line"
done
EOF2
cat >flows/slower <<'EOF2'
#!/bin/sh
while IFS= read -r line; do
	sleep 1
	printf '%s\n' "$line"
done
EOF2
cat >flows/hang <<'EOF2'
#!/bin/sh
echo $$ >>"$WHOOK_TEST_TMP/hang.pids"
cat >/dev/null
EOF2
cat >flows/quit <<'EOF2'
#!/bin/sh
IFS= read -r line
exit 3
EOF2
cat >flows/pipe <<'EOF2'
#!/bin/sh
echo $$ >>"$WHOOK_TEST_TMP/pipe.pids"
cat | cat
EOF2
chmod +x flows/*
WHOOK_TEST_TMP=$TMP
export WHOOK_TEST_TMP

# start NAME OPTION...: whook-listen --persistent on a free port, stderr
# in NAME.log; sets PORT, URL and SERVER.
start() {
	name=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	WHOOK_DB=$TMP/$name.db spawn whook-listen --listen "127.0.0.1:$PORT" \
	    --persistent "$@" 2>"$TMP/$name.log"
	SERVER=$LAST_PID
	wait_port "$PORT" || fail "server on $PORT" "not listening"
}

stop() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null
}

# pay N [SECRET]: posts transaction ch_N to /transactions.
pay() {
	http_status -H 'Content-Type: application/json' \
	    -H "X-Webhook-Secret: ${2:-$secret}" \
	    -d "{\"id\":\"ch_$1\",\"amount\":$1,\"currency\":\"usd\",\"customer\":\"c\"}" \
	    "$URL/transactions"
}

# load N PARALLEL FIRST: posts ch_FIRST.. ch_FIRST+N-1 with PARALLEL
# clients, each at most 10 s, and prints "N STATUS" lines.
load() {
	seq "$3" $(($3 + $1 - 1)) | xargs -P "$2" -I{} curl -s -o /dev/null \
	    --max-time 10 -w '{} %{http_code}\n' \
	    -H 'Content-Type: application/json' \
	    -H "X-Webhook-Secret: $secret" \
	    -d '{"id":"ch_{}","amount":{},"currency":"usd","customer":"c"}' \
	    "$URL/transactions"
}

# children PID: the child processes of PID.
children() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep .
}

# Options.
out=$(whook-listen --help)
check_match "help lists --persistent" "$out" "--persistent"
check_match "help lists --max-inflight" "$out" "--max-inflight"
check_match "help lists --stop-timeout" "$out" "--stop-timeout"
whook-listen --persistent --max-inflight 0 -- cat </dev/null 2>/dev/null
check_eq "max-inflight 0 exit 64" "$?" 64
whook-listen --persistent --async -- cat </dev/null 2>"$TMP/err"
check_eq "persistent with async exit 64" "$?" 64
check_match "persistent with async reason" "$(cat "$TMP/err")" \
    "exclude each other"
whook-listen --stop-timeout x -- cat </dev/null 2>/dev/null
check_eq "bad stop-timeout exit 64" "$?" 64

# The in-process transactions flow gives the statuses of inetd mode.
start inproc --flows flows --max-body 4096
check_eq "inproc right secret 200" "$(pay 1)" 200
check_eq "inproc wrong secret 403" "$(pay 2 wrong)" 403
check_eq "inproc invalid JSON 400" "$(http_status -H \
    'Content-Type: application/json' -d '{"id":' "$URL/transactions")" 400
big=$(head -c 5000 /dev/zero | tr '\0' x)
check_eq "inproc body over max-body 413" "$(http_status -H \
    'Content-Type: application/json' -d "{\"id\":\"$big\"}" \
    "$URL/transactions")" 413
check_eq "inproc unknown flow 404" "$(http_status -d x "$URL/none")" 404
check_eq "inproc row stored" "$(sql "$TMP/inproc.db" \
    'SELECT id, amount FROM transactions')" "ch_1|1"
check_match "inproc runs in-process" "$(cat "$TMP/inproc.log")" \
    "runs in-process"
check_eq "inproc no child process" "$(children "$SERVER" | wc -l)" 0
check_match "inproc rejection named by whook-check" \
    "$(cat "$TMP/inproc.log")" "whook-check: "
check_nomatch "inproc no secret in the log" "$(cat "$TMP/inproc.log")" \
    "$secret"

# 300 concurrent requests: every one gets 200 and stores its row.
load 300 32 1000 >"$TMP/load.out"
check_eq "load 300 answers" "$(wc -l <"$TMP/load.out" | tr -d ' ')" 300
check_eq "load all 200" "$(awk '$2 != 200' "$TMP/load.out" | head -3)" ""
check_eq "load 300 rows" "$(sql "$TMP/inproc.db" \
    "SELECT count(*) FROM transactions WHERE id LIKE 'ch_1%' AND
    amount >= 1000")" 300
stop

# A 503 that is the flow's own outcome, here from a database that cannot
# be opened, is logged with sqlite's reason and not as a flow that ended.
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
WHOOK_DB=$TMP/missing/x.db spawn whook-listen --listen "127.0.0.1:$PORT" \
    --persistent --flows flows 2>"$TMP/nodb.log"
SERVER=$LAST_PID
wait_port "$PORT" || fail "server on $PORT" "not listening"
check_eq "unopenable database 503" "$(pay 1)" 503
stop
check_match "unopenable database reason" "$(cat "$TMP/nodb.log")" \
    "unable to open database file"
check_nomatch "unopenable database not a stopped flow" \
    "$(cat "$TMP/nodb.log")" "before its outcome"

# In-process flows that read the raw body get it, by a plain path, by
# jq, inside $trigger, by --from or as raw_base64; the transactions flow
# above reads none of it.
# map_flow NAME TEMPLATE TABLE: writes flows/NAME, a whook-run flow that
# maps each envelope with TEMPLATE and inserts the result into TABLE.
map_flow() {
	printf '%s\n' '#!/usr/bin/env whook-run' "whook-map '$2' |" \
	    "whook-insert --db \"\$WHOOK_DB\" --table $3 --create" >"flows/$1"
	chmod +x "flows/$1"
}
# from_flow NAME TABLE PATH: writes flows/NAME, a whook-run flow that
# inserts the value at PATH into TABLE.
from_flow() {
	printf '%s\n' '#!/usr/bin/env whook-run' \
	    "whook-insert --db \"\$WHOOK_DB\" --table $2 --create --from '$3'" \
	    >"flows/$1"
	chmod +x "flows/$1"
}
map_flow raw '{"k": "path", "v": "{{$trigger.raw}}"}' raws
map_flow rawjq '{"k": "jq", "v": "{{$trigger.raw | ascii_upcase}}"}' raws
map_flow rawtrigger '{"k": "trigger", "v": "{{$trigger}}"}' raws
from_flow rawfrom triggers '$trigger'
map_flow raw64 '{"k": "base64", "v": "{{$trigger.raw_base64}}"}' raws
start raw --flows flows
for f in raw rawjq rawtrigger rawfrom; do
	# Twice: the flow is built by the first request.
	for n in 1 2; do
		check_eq "raw $f $n 200" "$(http_status -H \
		    'Content-Type: application/json' -d "{\"n\":$n}" \
		    "$URL/$f")" 200
	done
done
printf '\377%s' 1 >"$TMP/bin1"
printf '\377%s' 2 >"$TMP/bin2"
for n in 1 2; do
	check_eq "raw base64 $n 200" "$(http_status \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$TMP/bin$n" "$URL/raw64")" 200
done
stop
check_eq "raw path rows" "$(sql "$TMP/raw.db" \
    "SELECT v FROM raws WHERE k = 'path' ORDER BY rowid")" \
    "$(printf '{"n":1}\n{"n":2}')"
check_eq "raw jq rows" "$(sql "$TMP/raw.db" \
    "SELECT v FROM raws WHERE k = 'jq' ORDER BY rowid")" \
    "$(printf '{"N":1}\n{"N":2}')"
check_eq "raw in trigger rows" "$(sql "$TMP/raw.db" \
    "SELECT json_extract(v, '$.raw') FROM raws WHERE k = 'trigger'
    ORDER BY rowid")" "$(printf '{"n":1}\n{"n":2}')"
check_eq "raw from trigger rows" "$(sql "$TMP/raw.db" \
    "SELECT raw FROM triggers ORDER BY rowid")" \
    "$(printf '{"n":1}\n{"n":2}')"
check_eq "raw base64 rows" "$(sql "$TMP/raw.db" \
    "SELECT v FROM raws WHERE k = 'base64' ORDER BY rowid")" \
    "$(printf '/zE=\n/zI=')"

# An in-process flow gets a long string of the body only when a step can
# read it.  Each of these flows reads it: by a path, by jq, inside the
# body, by --from and by an index from the end.
map_flow long '{"k": "path", "v": "{{$trigger.body.note}}"}' notes
map_flow longjq '{"k": "jq", "v": "{{$trigger.body | .note}}"}' notes
map_flow longbody '{"k": "body", "v": "{{$trigger.body}}"}' notes
from_flow longfrom bodies '$trigger.body'
map_flow longindex '{"k": "index", "v": "{{$trigger.body.list[-1]}}"}' notes
note=$(printf '%0300d' 0 | tr 0 n)
start long --flows flows
for f in long longjq longbody longfrom longindex; do
	for n in 1 2; do
		check_eq "long $f $n 200" "$(http_status -H \
		    'Content-Type: application/json' -d \
		    "{\"note\":\"$note$n\",\"list\":[\"$note\",\"$note$n\"]}" \
		    "$URL/$f")" 200
	done
done
stop
for k in path jq index; do
	check_eq "long $k rows" "$(sql "$TMP/long.db" \
	    "SELECT v FROM notes WHERE k = '$k' ORDER BY rowid")" \
	    "$(printf '%s1\n%s2' "$note" "$note")"
done
check_eq "long body rows" "$(sql "$TMP/long.db" \
    "SELECT json_extract(v, '$.note') FROM notes WHERE k = 'body'
    ORDER BY rowid")" "$(printf '%s1\n%s2' "$note" "$note")"
check_eq "long from rows" "$(sql "$TMP/long.db" \
    "SELECT note FROM bodies ORDER BY rowid")" \
    "$(printf '%s1\n%s2' "$note" "$note")"

# Each 200 is sent only after an fdatasync(2) of the WAL that ends after
# the row was written to it.  Under strace, each write, sync and send of
# the server is a line, in the order they ended.
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
WHOOK_DB=$TMP/sync.db spawn strace -f -qq -yy -s 16 -o "$TMP/sync.trace" \
    -e trace=pwrite64,fdatasync,fsync,sendmsg,sendto,writev \
    whook-listen --listen "127.0.0.1:$PORT" --persistent --flows flows \
    2>"$TMP/sync.log"
tracer=$LAST_PID
wait_port "$PORT" || fail "traced server on $PORT" "not listening"
for i in 1 2 3 4 5; do
	check_eq "traced request $i 200" "$(pay "70$i")" 200
done
SERVER=$(children "$tracer" | head -1)
stop
wait "$tracer"
# A resumed fdatasync is counted on the WAL when the call began on it.
awk '
/fdatasync\(.*-wal>/ && /unfinished/ { pending[$1] = 1; next }
/fdatasync resumed>/ && pending[$1] { delete pending[$1]
	if (/= 0$/ && written) { synced = 1; written = 0 } next }
/fdatasync\(.*-wal>.*= 0$/ { if (written) { synced = 1; written = 0 } next }
/pwrite64\(.*-wal>/ { written = 1; synced = 0; rows = 1; next }
/HTTP\/1\.1 200/ { sent++; if (!rows || !synced) early++; rows = 0 }
END { print sent + 0, early + 0 }' "$TMP/sync.trace" >"$TMP/sync.out"
check_eq "every traced 200 after its WAL sync" "$(cat "$TMP/sync.out")" "5 0"
check_eq "traced rows stored" "$(sql "$TMP/sync.db" \
    "SELECT count(*) FROM transactions WHERE id LIKE 'ch_70%'")" 5

# SIGTERM during load loses no acknowledged row.
start term --flows flows
load 200 16 5000 >"$TMP/term.out" &
loader=$!
sleep 0.5
kill -TERM "$SERVER"
wait "$SERVER"
check_eq "SIGTERM under load exit 0" "$?" 0
wait "$loader"
awk '$2 == 200 { print "ch_" $1 }' "$TMP/term.out" | sort >"$TMP/acked"
sql "$TMP/term.db" 'SELECT id FROM transactions' | sort >"$TMP/rows"
check "SIGTERM some requests acknowledged" test -s "$TMP/acked"
check_eq "SIGTERM every acknowledged row stored" \
    "$(comm -23 "$TMP/acked" "$TMP/rows" | head -3)" ""
check_eq "SIGTERM no answer other than 200 or none" \
    "$(awk '$2 != 200 && $2 != 000 && $2 != 503' "$TMP/term.out" | head -3)" ""

# External flows: one process for many requests, outcomes by id.
start ext --flows flows --timeout 20
for i in 1 2 3; do
	check_eq "external echo $i 200" "$(http_status -d x "$URL/echo")" 200
done
check_eq "external echo one process" "$(wc -l <"$TMP/echo.pids" | tr -d ' ')" 1
check_eq "external outcome error status 401" \
    "$(http_status -d x "$URL/reject")" 401
check_eq "external outcome 504" "$(http_status -d x "$URL/late")" 504
check_nomatch "external outcome 504 not a timeout" "$(cat "$TMP/ext.log")" \
    "gave no outcome"

# Killing the flow mid-run: 503 for what it held, then a restart.
(seq 1 30 | xargs -P 10 -I{} curl -s -o /dev/null --max-time 10 \
    -w '%{http_code}\n' -d x "$URL/slow") >"$TMP/kill.out" &
client=$!
sleep 0.6
pid=$(head -1 "$TMP/slow.pids")
check_match "slow flow is a child" "$(children "$SERVER")" "$pid"
kill -KILL "$pid"
wait "$client"
check_eq "killed flow all answered" "$(grep -c . "$TMP/kill.out")" 30
check_eq "killed flow never hangs" "$(grep -c '^000' "$TMP/kill.out")" 0
check_match "killed flow gives 503" "$(cat "$TMP/kill.out")" 503
check_eq "killed flow answers 200 or 503" \
    "$(grep -v '^200$' "$TMP/kill.out" | grep -v '^503$' | head -3)" ""
check_eq "after kill restarted 200" "$(http_status -d x "$URL/slow")" 200
check "after kill new process" test "$(tail -1 "$TMP/slow.pids")" != "$pid"
check_match "after kill logged" "$(cat "$TMP/ext.log")" "killed by signal 9"
check_match "killed flow 503 reason" "$(cat "$TMP/ext.log")" \
    "flow exited or is stopping before its outcome"

# A pipeline whose sh is killed: its stages, which hold the output open,
# are stopped, and the next request starts the flow again.
check_eq "pipe flow 200" "$(http_status -d x "$URL/pipe")" 200
pid=$(head -1 "$TMP/pipe.pids")
kill -KILL "$pid"
i=0
while [ $i -lt 40 ] && ! grep -q "(pid $pid) killed by signal 9" \
    "$TMP/ext.log"; do
	sleep 0.1
	i=$((i + 1))
done
check_match "pipe flow sh reaped" "$(cat "$TMP/ext.log")" \
    "(pid $pid) killed by signal 9"
check_eq "pipe flow restarted 200" "$(http_status -d x "$URL/pipe")" 200
check_eq "pipe flow new sh" "$(wc -l <"$TMP/pipe.pids" | tr -d ' ')" 2

# A flow that exits without an outcome: 503, then a restart.
check_eq "exiting flow 503" "$(http_status -d x "$URL/quit")" 503
check_eq "exiting flow again 503" "$(http_status -d x "$URL/quit")" 503
check_match "exiting flow logged" "$(cat "$TMP/ext.log")" \
    "exited with status 3"

stop

# A hung flow: 504 within --timeout, and the next request gets a new one.
start hang --flows flows --timeout 2
begin=$(date +%s)
check_eq "hung flow 504" "$(http_status -d x "$URL/hang")" 504
check "hung flow 504 within 4 s" test $(($(date +%s) - begin)) -le 4
check_eq "hung flow again 504" "$(http_status -d x "$URL/hang")" 504
check_eq "hung flow restarted" "$(wc -l <"$TMP/hang.pids" | tr -d ' ')" 2
stop

# --max-inflight 1 with a slow flow: the second request is 503 at once.
start busy --flows flows --max-inflight 1
curl -s -o /dev/null --max-time 10 -w '%{http_code}' -d x "$URL/slower" \
    >"$TMP/first.status" &
client=$!
sleep 0.1
curl -s -D "$TMP/busy.headers" -o /dev/null --max-time 10 \
    -w '%{http_code}' -d x "$URL/slower" >"$TMP/second.status"
wait "$client"
check_eq "max-inflight first 200" "$(cat "$TMP/first.status")" 200
check_eq "max-inflight second 503" "$(cat "$TMP/second.status")" 503
check_match "max-inflight Retry-After" \
    "$(tr -d '\r' <"$TMP/busy.headers")" "Retry-After: 1"
check_match "max-inflight logged" "$(cat "$TMP/busy.log")" "flow busy"
stop

# Accept=no: systemd passes the listening socket, no --inetd.
if command -v systemd-socket-activate >/dev/null; then
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	WHOOK_DB=$TMP/sd.db spawn systemd-socket-activate \
	    -E CREDENTIALS_DIRECTORY -E WHOOK_DB -E PATH \
	    -l "127.0.0.1:$PORT" "$BIN/whook-listen" --persistent \
	    --flows "$TMP/flows" 2>"$TMP/sd.log"
	SERVER=$LAST_PID
	wait_port "$PORT"
	check_eq "Accept=no first 200" "$(pay 7)" 200
	check_eq "Accept=no second 200" "$(pay 8)" 200
	check_eq "Accept=no rows" "$(sql "$TMP/sd.db" \
	    'SELECT count(*) FROM transactions')" 2
	check_match "Accept=no socket used" "$(cat "$TMP/sd.log")" \
	    "the LISTEN_FDS socket"
	stop
fi
