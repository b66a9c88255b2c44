#!/bin/sh
# The transactions flow end to end: curl and whook-send against
# flows.d/transactions behind systemd-socket-activate (inetd mode),
# behind whook-listen --listen, and run in-process by whook-listen
# --persistent on its own listener and behind systemd-socket-activate,
# with a real sqlite file.
. "$(dirname "$0")/../lib.sh"

mkdir cred
secret=s3cr3t-$$-transactions
printf '%s\n' "$secret" >cred/transactions.secret
CREDENTIALS_DIRECTORY=$TMP/cred
export CREDENTIALS_DIRECTORY
payload='{"id":"ch_1","amount":2000,"currency":"usd","customer":"cus_9"}'

# start_endpoint MODE DB LOG [OPTION...]: starts the flows of the
# repository on a free port; sets PORT.
start_endpoint() {
	mode=$1 db=$2 log=$3
	shift 3
	PORT=$(free_port)
	if [ "$mode" = inetd-persistent ]; then set -- --persistent "$@"; fi
	if [ "$mode" = inetd ] || [ "$mode" = inetd-persistent ]; then
		WHOOK_DB=$db spawn systemd-socket-activate --inetd -a \
		    -E CREDENTIALS_DIRECTORY -E WHOOK_DB -E PATH \
		    -l "127.0.0.1:$PORT" "$BIN/whook-listen" \
		    --flows "$ROOT/flows.d" --max-body 4096 "$@" 2>"$log"
	else
		if [ "$mode" = persistent ]; then set -- --persistent "$@"; fi
		WHOOK_DB=$db spawn "$BIN/whook-listen" \
		    --listen "127.0.0.1:$PORT" --flows "$ROOT/flows.d" \
		    --max-body 4096 "$@" 2>"$log"
	fi
	wait_port "$PORT"
}

post() {
	http_status -H 'Content-Type: application/json' "$@"
}

suite() {
	mode=$1 db=$TMP/$1.db log=$TMP/$1.log
	start_endpoint "$mode" "$db" "$log"
	url=http://127.0.0.1:$PORT/transactions

	got=$(post -H "X-Webhook-Secret: $secret" -d "$payload" "$url")
	check_eq "$mode: right secret 200" "$got" 200
	check_eq "$mode: row stored" "$(sql "$db" \
	    'SELECT id, amount, currency, customer_id FROM transactions')" \
	    "ch_1|2000|usd|cus_9"
	check_eq "$mode: amount an integer" "$(sql "$db" \
	    'SELECT typeof(amount) FROM transactions')" integer
	if [ "$mode" = inetd ]; then
		check_match "inetd: the flow file runs in-process" \
		    "$(cat "$log")" "runs in-process"
	fi

	got=$(post -H 'X-Webhook-Secret: wrong' \
	    -d '{"id":"ch_bad","amount":1,"currency":"usd","customer":"c"}' \
	    "$url")
	check_eq "$mode: wrong secret 403" "$got" 403
	id=$(jq -r .id "$TMP/body")
	got=$(post -d '{"id":"ch_none","amount":1,"currency":"usd"}' "$url")
	check_eq "$mode: missing secret 403" "$got" 403
	check_eq "$mode: no row for rejected" "$(sql "$db" \
	    "SELECT count(*) FROM transactions WHERE id IN ('ch_bad','ch_none')")" 0
	sleep 0.2
	check_match "$mode: log names the rejected id" \
	    "$(grep whook-check "$log")" "$id"
	check_nomatch "$mode: no secret in the log" "$(cat "$log")" "$secret"
	check_nomatch "$mode: no secret in the response" \
	    "$(cat "$TMP/body")" "$secret"

	check_eq "$mode: unknown flow 404" "$(post -d '{}' \
	    "http://127.0.0.1:$PORT/nosuchflow")" 404
	check_eq "$mode: GET 405" "$(http_status "$url")" 405
	check_eq "$mode: invalid JSON 400" "$(post \
	    -H "X-Webhook-Secret: $secret" -d '{"id":' "$url")" 400
	check_eq "$mode: a field missing 422" "$(post \
	    -H "X-Webhook-Secret: $secret" \
	    -d '{"id":"ch_part","amount":1,"currency":"usd"}' "$url")" 422
	check_eq "$mode: empty body 422" "$(post \
	    -H "X-Webhook-Secret: $secret" -d '' "$url")" 422
	check_eq "$mode: no row for a partial event" "$(sql "$db" \
	    "SELECT count(*) FROM transactions WHERE id = 'ch_part'
	    OR id IS NULL")" 0
	big=$(head -c 5000 /dev/zero | tr '\0' x)
	check_eq "$mode: body over --max-body 413" "$(post \
	    -H "X-Webhook-Secret: $secret" -d "{\"id\":\"$big\"}" "$url")" 413

	whook-send -q "$url" "X-Webhook-Secret:$secret" id=ch_2 \
	    amount:=1500 currency=eur customer=cus_2 >"$TMP/send.out" 2>&1
	check_eq "$mode: whook-send exit 0" "$?" 0
	check_eq "$mode: whook-send row" "$(sql "$db" \
	    "SELECT amount, typeof(amount) FROM transactions WHERE id = 'ch_2'")" \
	    "1500|integer"
	kill "$LAST_PID"
	wait "$LAST_PID" 2>/dev/null
}

suite inetd
suite listen
suite persistent
suite inetd-persistent

# Asynchronous: 202 at once, the row shortly after.
for mode in inetd listen; do
	db=$TMP/async-$mode.db
	start_endpoint $mode "$db" "$TMP/async-$mode.log" --async
	got=$(post -H "X-Webhook-Secret: $secret" -d "$payload" \
	    "http://127.0.0.1:$PORT/transactions")
	check_eq "$mode --async: 202" "$got" 202
	i=0 rows=0
	while [ $i -lt 50 ]; do
		rows=$(sql "$db" 'SELECT count(*) FROM transactions' 2>/dev/null)
		[ "$rows" = 1 ] && break
		sleep 0.1
		i=$((i + 1))
	done
	check_eq "$mode --async: row stored after the answer" "$rows" 1
	kill "$LAST_PID"
	wait "$LAST_PID" 2>/dev/null
done
