#!/bin/sh
# Every accepted payload is kept and a replay stores it once: whook-listen
# --log with --async and a database that cannot be opened, then
# whook-send --replay with a cursor, a flow fed the log directly, and a
# kill -9 of the endpoint and its flows while requests arrive.
. "$(dirname "$0")/../lib.sh"

mkdir cred
secret=replay-secret-$$
printf '%s\n' "$secret" >cred/transactions.secret
CREDENTIALS_DIRECTORY=$TMP/cred
export CREDENTIALS_DIRECTORY

# start_endpoint LOG [OPTION...]: the repository's flows on a free port.
start_endpoint() {
	log=$1
	shift
	PORT=$(free_port)
	spawn "$BIN/whook-listen" --listen "127.0.0.1:$PORT" \
	    --flows "$ROOT/flows.d" --log "$log" --accept-id "$@" \
	    2>>"$TMP/listen.err"
	wait_port "$PORT"
	URL=http://127.0.0.1:$PORT/transactions
}

# post_events FIRST LAST: one request per id, prints each status.
post_events() {
	i=$1
	while [ "$i" -le "$2" ]; do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
		    -H "X-Webhook-Secret: $secret" \
		    -H 'Content-Type: application/json' \
		    -d "{\"id\":\"ch_$i\",\"amount\":$i,\"currency\":\"usd\",\"customer\":\"c\"}" \
		    "$URL"
		i=$((i + 1))
	done
}

rows() {
	sql "$1" 'SELECT count(*) FROM transactions' 2>/dev/null || echo 0
}

# The database folder is missing: every flow fails after the 202.
WHOOK_DB=$TMP/db/whook.db
export WHOOK_DB
start_endpoint "$TMP/received.ndjson" --async
check_eq "async answers 202 for 100" \
    "$(post_events 1 100 | sort | uniq -c | sed 's/^ *//')" "100 202"
sleep 1
check_eq "nothing stored while the database is down" \
    "$([ -e "$TMP/db/whook.db" ] && rows "$WHOOK_DB" || echo 0)" 0
check_eq "every accepted request is in the log" \
    "$(wc -l <"$TMP/received.ndjson" | tr -d ' ')" 100
mode=$(stat -c %a "$TMP/received.ndjson")
check_eq "log mode 0600" "$mode" 600

mkdir "$TMP/db"
whook-send --replay --cursor c --failed f "$URL" <"$TMP/received.ndjson" \
    2>replay1.err
check_eq "first replay exits 0" "$?" 0
i=0
while [ "$(rows "$WHOOK_DB")" != 100 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
check_eq "first replay stores all 100" "$(rows "$WHOOK_DB")" 100
check_match "first replay sent 100" "$(cat replay1.err)" "100 sent"

whook-send --replay --cursor c --failed f "$URL" <"$TMP/received.ndjson" \
    2>replay2.err
check_eq "second replay exits 0" "$?" 0
check_match "second replay sends none" "$(cat replay2.err)" " 0 sent"
sleep 0.5
check_eq "second replay stores none" "$(rows "$WHOOK_DB")" 100

check_eq "ten new requests answered" \
    "$(post_events 101 110 | sort | uniq -c | sed 's/^ *//')" "10 202"
i=0
while [ "$(rows "$WHOOK_DB")" != 110 ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
whook-send --replay --cursor c --failed f "$URL" <"$TMP/received.ndjson" \
    2>replay3.err
check_match "third replay sends only the 10 new" "$(cat replay3.err)" \
    "10 sent"
sleep 0.5
check_eq "third replay stores each once" \
    "$(sql "$WHOOK_DB" 'SELECT count(*), count(DISTINCT id) FROM transactions')" \
    "110|110"
kill "$LAST_PID"
wait "$LAST_PID" 2>/dev/null

# The log straight into the flow, twice: each row once.
WHOOK_DB=$TMP/direct.db "$ROOT/flows.d/transactions" \
    <"$TMP/received.ndjson" >/dev/null 2>direct.err
check_eq "log into the flow exits 0" "$?" 0
WHOOK_DB=$TMP/direct.db "$ROOT/flows.d/transactions" \
    <"$TMP/received.ndjson" >/dev/null 2>>direct.err
check_eq "log into the flow twice stores each once" \
    "$(sql "$TMP/direct.db" 'SELECT count(*), count(DISTINCT id) FROM transactions')" \
    "110|110"

# kill -9 of the endpoint and its flows while requests arrive: every 2xx
# is in the log, and after a replay in the table exactly once.
WHOOK_DB=$TMP/crash.db
start_endpoint "$TMP/crash.ndjson"
listen_pid=$LAST_PID
n=0
while [ $n -lt 8 ]; do
	(
		i=0
		while [ $i -lt 40 ]; do
			id=crash_${n}_$i
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
			    -H "X-Webhook-Secret: $secret" \
			    -H 'Content-Type: application/json' \
			    -d "{\"id\":\"$id\",\"amount\":1,\"currency\":\"usd\",\"customer\":\"c\"}" \
			    "$URL")
			echo "$code $id"
			i=$((i + 1))
		done
	) >"$TMP/crash-$n.status" &
	n=$((n + 1))
done
sleep 0.7
# Each flow runs in a process group of its own, led by the flow's shell.
for pid in $(cat /proc/"$listen_pid"/task/*/children 2>/dev/null); do
	kill -9 -- "-$pid" 2>/dev/null
done
kill -9 "$listen_pid"
wait 2>/dev/null
cat "$TMP"/crash-*.status | awk '$1 ~ /^2/ { print $2 }' | sort >acked
check "some requests were answered before the kill" test -s acked
jq -r '.["$trigger"].body.id' "$TMP/crash.ndjson" 2>/dev/null | sort -u >logged
check_eq "every 2xx is in the log" "$(comm -23 acked logged | wc -l | tr -d ' ')" 0

start_endpoint "$TMP/crash-after.ndjson"
whook-send --replay -q "$URL" <"$TMP/crash.ndjson"
check_eq "replay after the crash exits 0" "$?" 0
sleep 0.5
sql "$WHOOK_DB" 'SELECT id FROM transactions' | sort >stored
check_eq "every 2xx stored after the replay" \
    "$(comm -23 acked stored | wc -l | tr -d ' ')" 0
check_eq "each stored once" "$(sql "$WHOOK_DB" \
    'SELECT count(*) = count(DISTINCT id) FROM transactions')" 1
