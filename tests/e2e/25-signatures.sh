#!/bin/sh
# Sender signatures end to end: whook-send signs, whook-check verifies
# behind whook-listen --listen and behind systemd-socket-activate (inetd
# mode), for every scheme whook-send can sign.  A signed POST is stored;
# a changed body, a stale timestamp, a missing signature header or a
# wrong secret gets 401 and stores nothing.  Either of two secrets
# passes, and no response or log line contains a secret or a digest.
# Then the GitHub and Stripe flows of flows.d, with payloads shaped as
# those senders send them.
. "$(dirname "$0")/../lib.sh"

NAMES="github stripe slack shopify stdwh hmac256 hmac1 hmac512"

# scheme NAME: sets SCHEME (the --signature argument), SIGHDR (the header
# that carries the digest) and STAMPED (1 when a timestamp is signed).
scheme() {
	STAMPED=0
	case $1 in
	github) SCHEME=github SIGHDR=x-hub-signature-256 ;;
	stripe) SCHEME=stripe SIGHDR=stripe-signature STAMPED=1 ;;
	slack) SCHEME=slack SIGHDR=x-slack-signature STAMPED=1 ;;
	shopify) SCHEME=shopify SIGHDR=x-shopify-hmac-sha256 ;;
	stdwh) SCHEME=standard-webhooks SIGHDR=webhook-signature STAMPED=1 ;;
	hmac256) SCHEME=hmac-sha256:X-Signature:sha256=:hex SIGHDR=x-signature ;;
	hmac1) SCHEME=hmac-sha1:X-Signature-Sha1 SIGHDR=x-signature-sha1 ;;
	hmac512)
		SCHEME=hmac-sha512:X-Signature-512:v1=:base64
		SIGHDR=x-signature-512
		;;
	esac
}

# Three secrets a scheme: the current one, the one before a rotation,
# and one the flow does not know.  Standard Webhooks keys are whsec_ and
# base64; the others are used as the text they are.
mkdir cred flows
for sn in $NAMES; do
	for which in new old wrong; do
		rand=$(openssl rand -hex 12)
		if [ "$sn" = stdwh ]; then
			printf 'whsec_%s\n' "$(printf '%s' "$rand" | base64)"
		else
			printf '%s-%s-%s\n' "$sn" "$which" "$rand"
		fi >"cred/$sn.$which"
	done
	scheme "$sn"
	cat >"flows/$sn" <<EOF
#!/bin/sh
whook-check --signature '$SCHEME' \\
    --secret @$TMP/cred/$sn.new --secret @$TMP/cred/$sn.old \\
| whook-map '{"flow": "$sn", "n": "{{\$trigger.body.n}}"}' \\
| whook-insert --db "\$WHOOK_DB" --table t --create
EOF
done
printf 'hdr-%s\n' "$(openssl rand -hex 12)" >cred/header.secret
cat >flows/header <<EOF
#!/bin/sh
whook-check --header x-webhook-secret=@$TMP/cred/header.secret \\
| whook-map '{"flow": "header", "n": "{{\$trigger.body.n}}"}' \\
| whook-insert --db "\$WHOOK_DB" --table t --create
EOF
chmod +x flows/*
openssl rand -hex 16 >cred/github.secret
printf 'whsec_%s\n' "$(openssl rand -hex 16)" >cred/stripe.secret
CREDENTIALS_DIRECTORY=$TMP/cred
export CREDENTIALS_DIRECTORY
: >responses

# A capture server: whook-listen with no flow writes each envelope on
# its standard output, which shows the headers whook-send signed.
CAPTURE_PORT=$(free_port)
spawn whook-listen --listen "127.0.0.1:$CAPTURE_PORT" >capture.ndjson \
    2>capture.log
wait_port "$CAPTURE_PORT" || fail "capture server" "not listening"

# start_endpoint MODE DB LOG FLOWS: serves FLOWS on a free port and sets
# PORT and SERVER.  MODE inetd runs one process per connection, and
# MODE listen uses whook-listen's own listener.
start_endpoint() {
	PORT=$(free_port)
	if [ "$1" = inetd ]; then
		WHOOK_DB=$2 spawn systemd-socket-activate --inetd -a \
		    -E WHOOK_DB -E PATH -E CREDENTIALS_DIRECTORY \
		    -l "127.0.0.1:$PORT" "$BIN/whook-listen" --flows "$4" \
		    2>"$3"
	else
		WHOOK_DB=$2 spawn whook-listen --listen "127.0.0.1:$PORT" \
		    --flows "$4" 2>"$3"
	fi
	SERVER=$LAST_PID
	wait_port "$PORT" || fail "$1 server on $PORT" "not listening"
}

# stop_endpoint: stops the server, whose status after SIGTERM is no
# result of this test.
stop_endpoint() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null || :
}

# signed_post URL SCHEME SECRET_FILE BODY [OPTION | ITEM...]: POSTs BODY
# signed by whook-send; prints the HTTP status (000 when none) and appends the
# response body to $TMP/responses.
signed_post() {
	url=$1 scheme=$2 key=$3 body=$4
	shift 4
	whook-send --timeout 10 --sign "$scheme" --secret "@$key" \
	    -d "$body" "$url" "$@" >"$TMP/body" 2>"$TMP/send.err"
	cat "$TMP/body" >>"$TMP/responses"
	status=$(sed -n 's|^HTTP/[0-9.]* \([0-9][0-9][0-9]\).*|\1|p' \
	    "$TMP/send.err" | tail -n 1)
	echo "${status:-000}"
}

# capture SCHEME SECRET_FILE BODY TIMESTAMP OUT [DROP]: sends BODY,
# signed at TIMESTAMP, to the capture server.  Writes the headers it
# received to OUT as "name: value" lines for curl -H @OUT, without the
# header DROP and those that curl sets from the body.
capture() {
	whook-send -q --timeout 10 --sign "$1" --secret "@$2" \
	    --timestamp "$4" --webhook-id msg_whook_e2e -d "$3" \
	    "http://127.0.0.1:$CAPTURE_PORT/capture" >/dev/null 2>&1
	tail -n 1 capture.ndjson | jq -r --arg drop "${6:-}" \
	    '.["$trigger"].headers | to_entries[]
	    | select(.key | IN("host", "content-length", "expect", $drop)
	    | not) | "\(.key): \(.value)"' >"$5"
}

# digest HEADERS: prints the digest of the signature header in the
# file HEADERS, the one run of 20 or more base64 or hex characters.
digest() {
	grep -i "^$SIGHDR:" "$1" | grep -oE '[A-Za-z0-9+/]{20,}' | head -n 1
}

# replay URL HEADERS BODY: POSTs BODY with curl and the headers in the
# file HEADERS; prints the HTTP status.
replay() {
	curl -sS -o "$TMP/body" -w '%{http_code}' --max-time 10 -H "@$2" \
	    --data-binary "$3" "$1" 2>>"$TMP/curl.err"
	cat "$TMP/body" >>"$TMP/responses"
}

count() {
	sql "$1" "SELECT count(*) FROM t WHERE n = '$2'"
}

# scheme_suite MODE NAME DB URL LOG: every case of one scheme.
scheme_suite() {
	mode=$1 sn=$2 db=$3 url=$4 log=$5
	scheme "$sn"
	t="$mode $sn"

	got=$(signed_post "$url" "$SCHEME" "cred/$sn.new" \
	    "{\"n\":\"$sn-new\"}")
	check_eq "$t: signed POST 200" "$got" 200
	check_eq "$t: signed row stored" "$(count "$db" "$sn-new")" 1
	got=$(signed_post "$url" "$SCHEME" "cred/$sn.old" \
	    "{\"n\":\"$sn-old\"}")
	check_eq "$t: second secret 200" "$got" 200
	check_eq "$t: second secret row" "$(count "$db" "$sn-old")" 1
	got=$(signed_post "$url" "$SCHEME" "cred/$sn.wrong" \
	    "{\"n\":\"$sn-wrong\"}")
	check_eq "$t: wrong secret 401" "$got" 401
	check_eq "$t: wrong secret no row" "$(count "$db" "$sn-wrong")" 0
	if [ "$STAMPED" = 1 ]; then
		got=$(signed_post "$url" "$SCHEME" "cred/$sn.new" \
		    "{\"n\":\"$sn-stale\"}" --timestamp 1000000000)
		check_eq "$t: stale timestamp 401" "$got" 401
		check_eq "$t: stale no row" "$(count "$db" "$sn-stale")" 0
	fi

	# The same signed headers with the body sent, with one byte of it
	# changed, and without the signature header.
	now=$(date +%s)
	body="{\"n\":\"$sn-replay\"}"
	changed="{\"n\":\"$sn-replax\"}"
	capture "$SCHEME" "cred/$sn.new" "$body" "$now" signed.h
	capture "$SCHEME" "cred/$sn.new" "$body" "$now" unsigned.h "$SIGHDR"
	capture "$SCHEME" "cred/$sn.new" "$changed" "$now" changed.h
	sig=$(digest signed.h)
	changed_sig=$(digest changed.h)
	check "$t: digest captured" test -n "$sig"
	check "$t: digests differ" test "$sig" != "$changed_sig"
	check_eq "$t: captured headers 200" "$(replay "$url" signed.h "$body")" 200
	check_eq "$t: captured row" "$(count "$db" "$sn-replay")" 1
	check_eq "$t: changed byte 401" "$(replay "$url" signed.h "$changed")" 401
	check_eq "$t: changed no row" "$(count "$db" "$sn-replax")" 0
	check_eq "$t: no signature header 401" \
	    "$(replay "$url" unsigned.h "$body")" 401
	check_eq "$t: no signature no row" "$(count "$db" "$sn-replay")" 1

	sleep 0.1
	for which in new old wrong; do
		secret=$(cat "cred/$sn.$which")
		check_nomatch "$t: no $which secret in log" "$(cat "$log")" \
		    "$secret"
		check_nomatch "$t: no $which secret in responses" \
		    "$(cat responses)" "$secret"
	done
	check_nomatch "$t: no digest in log" "$(cat "$log")" "$sig"
	check_nomatch "$t: no changed digest in log" "$(cat "$log")" \
	    "$changed_sig"
	check_nomatch "$t: no digest in responses" "$(cat responses)" "$sig"
}

suite() {
	mode=$1 db=$TMP/$1.db log=$TMP/$1.log
	start_endpoint "$mode" "$db" "$log" "$TMP/flows"
	for sn in $NAMES; do
		scheme_suite "$mode" "$sn" "$db" \
		    "http://127.0.0.1:$PORT/$sn" "$log"
	done

	url=http://127.0.0.1:$PORT/header
	got=$(http_status -H 'Content-Type: application/json' \
	    -H "X-Webhook-Secret: $(cat cred/header.secret)" \
	    -d '{"n":"header-ok"}' "$url")
	check_eq "$mode header: right value 200" "$got" 200
	check_eq "$mode header: row" "$(count "$db" header-ok)" 1
	got=$(http_status -H 'Content-Type: application/json' \
	    -H 'X-Webhook-Secret: wrong' -d '{"n":"header-bad"}' "$url")
	check_eq "$mode header: wrong value 403" "$got" 403
	check_eq "$mode header: no row" "$(count "$db" header-bad)" 0
	stop_endpoint
}

suite listen
suite inetd

# The flows of flows.d, with the corpus payloads when they are there
# and small bodies of the same shape when not.
if [ -f "$CORPUS/payloads/github-push.json" ]; then
	cp "$CORPUS/payloads/github-push.json" push.json
	cp "$CORPUS/payloads/stripe-charge.succeeded.json" charge.json
else
	cat >push.json <<'EOF'
{"ref": "refs/heads/main", "after": "59b20b8d5c6ff8d09518216e5a4ec0e1f1c3a5d2",
 "repository": {"id": 700100200, "full_name": "octo-org/hello-whook"},
 "pusher": {"name": "mira-dev", "email": "mira.dev@example.test"}}
EOF
	cat >charge.json <<'EOF'
{"id": "evt_3QinventEVT0001", "object": "event", "created": 1700000000,
 "type": "charge.succeeded",
 "data": {"object": {"id": "ch_3QinventCHARGE01", "object": "charge",
                     "amount": 2000, "currency": "eur"}}}
EOF
fi
push_ref=$(jq -r .ref push.json)
push_repo=$(jq -r .repository.full_name push.json)
charge=$(jq -r '[.id, .type, .created, .data.object.id,
    .data.object.amount, .data.object.currency] | join("|")' charge.json)
charge_id=$(jq -r .id charge.json)

flows_suite() {
	mode=$1 db=$TMP/flows-$1.db log=$TMP/flows-$1.log
	start_endpoint "$mode" "$db" "$log" "$ROOT/flows.d"
	url=http://127.0.0.1:$PORT/github
	key=cred/github.secret

	got=$(signed_post "$url" github "$key" "$(cat push.json)" \
	    X-GitHub-Event:push X-GitHub-Delivery:d-1)
	check_eq "$mode github: push 200" "$got" 200
	check_eq "$mode github: push row" "$(sql "$db" "SELECT event, ref,
	    repository FROM github_deliveries WHERE delivery = 'd-1'")" \
	    "push|$push_ref|$push_repo"
	got=$(signed_post "$url" github "$key" "$(cat push.json)" \
	    X-GitHub-Event:push X-GitHub-Delivery:d-1)
	check_eq "$mode github: redelivery 200" "$got" 200
	check_eq "$mode github: redelivery one row" "$(sql "$db" \
	    "SELECT count(*) FROM github_deliveries WHERE delivery = 'd-1'")" 1
	got=$(signed_post "$url" github "$key" '{"zen":"Keep it simple.","hook_id":7}' \
	    X-GitHub-Event:ping X-GitHub-Delivery:d-2)
	check_eq "$mode github: ping 200" "$got" 200
	check_eq "$mode github: ping row" "$(sql "$db" "SELECT event,
	    ref IS NULL FROM github_deliveries WHERE delivery = 'd-2'")" "ping|1"
	got=$(signed_post "$url" github "$key" '{"action":"opened"}' \
	    X-GitHub-Event:issues X-GitHub-Delivery:d-3)
	check_eq "$mode github: other event 403" "$got" 403
	got=$(signed_post "$url" github "$key" "$(cat push.json)" \
	    X-GitHub-Event:push)
	check_eq "$mode github: no delivery id 403" "$got" 403
	got=$(signed_post "$url" github cred/github.wrong "$(cat push.json)" \
	    X-GitHub-Event:push X-GitHub-Delivery:d-4)
	check_eq "$mode github: wrong secret 401" "$got" 401
	check_eq "$mode github: rows" "$(sql "$db" \
	    'SELECT group_concat(delivery) FROM github_deliveries')" "d-1,d-2"

	url=http://127.0.0.1:$PORT/stripe
	key=cred/stripe.secret
	got=$(signed_post "$url" stripe "$key" "$(cat charge.json)")
	check_eq "$mode stripe: event 200" "$got" 200
	check_eq "$mode stripe: row" "$(sql "$db" "SELECT id, type, created,
	    object_id, amount, currency FROM stripe_events")" "$charge"
	check_eq "$mode stripe: amount an integer" "$(sql "$db" \
	    'SELECT typeof(amount) FROM stripe_events')" integer
	got=$(signed_post "$url" stripe "$key" "$(cat charge.json)" \
	    --timestamp $(($(date +%s) + 5)))
	check_eq "$mode stripe: retry 200" "$got" 200
	check_eq "$mode stripe: retry stored once" "$(sql "$db" \
	    "SELECT count(*) FROM stripe_events WHERE id = '$charge_id'")" 1
	got=$(signed_post "$url" stripe cred/stripe.wrong \
	    '{"id":"evt_bad","type":"charge.succeeded","data":{"object":{}}}')
	check_eq "$mode stripe: wrong secret 401" "$got" 401
	got=$(signed_post "$url" stripe "$key" \
	    '{"id":"evt_old","type":"charge.succeeded","data":{"object":{}}}' \
	    --timestamp 1000000000)
	check_eq "$mode stripe: stale timestamp 401" "$got" 401
	check_eq "$mode stripe: rejected no row" "$(sql "$db" \
	    "SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_bad%'
	    OR id = 'evt_old'")" 0

	sleep 0.1
	for f in github.secret stripe.secret; do
		check_nomatch "$mode flows: no $f in log" "$(cat "$log")" \
		    "$(cat "cred/$f")"
		check_nomatch "$mode flows: no $f in responses" \
		    "$(cat responses)" "$(cat "cred/$f")"
	done
	stop_endpoint
}

flows_suite listen
flows_suite inetd
