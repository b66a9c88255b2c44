#!/bin/sh
# whook-listen --log: every accepted envelope is in the log, with its raw
# bytes, before the response, and the file is created 0600.  --log-redact
# leaves headers out of the log copy only.  A failed append is a 503 that
# runs no flow, and SIGHUP reopens the file.  --accept-id takes a
# replayed envelope's id from Whook-Envelope-Id.
. "$(dirname "$0")/../lib.sh"

mkdir flows
cat >flows/tee <<'EOF2'
#!/bin/sh
tee -a "$WHOOK_TEST_TMP/flow.ndjson"
EOF2
chmod +x flows/tee
WHOOK_TEST_TMP=$TMP
export WHOOK_TEST_TMP

# start NAME OPTION...: whook-listen on a free port, stderr in NAME.log.
start() {
	name=$1
	shift
	PORT=$(free_port)
	URL=http://127.0.0.1:$PORT
	spawn whook-listen --listen "127.0.0.1:$PORT" "$@" 2>"$TMP/$name.log"
	SERVER=$LAST_PID
	wait_port "$PORT" || fail "server on $PORT" "not listening"
}

stop() {
	kill "$SERVER"
	wait "$SERVER" 2>/dev/null
}

# post BODYFILE CURL_ARGS...: posts the file's exact bytes to /tee.
post() {
	file=$1
	shift
	http_status -H 'Content-Type: application/json' \
	    --data-binary "@$file" "$@" "$URL/tee"
}

# Raw bytes: spacing, a non-ASCII character and an escaped one survive.
printf '{ "a" :1,\n  "b": "caf\303\251 \\u00e9"}' >body1.json
printf '[1, 2 ,3]' >body2.json
printf '{"bad": ' >bad.json
umask 022
start log --flows flows --log "$TMP/recv.ndjson"
check_eq "log first 200" "$(post body1.json)" 200
id1=$(jq -r .id body)
check_eq "log second 200" "$(post body2.json)" 200
id2=$(jq -r .id body)
check_eq "log invalid JSON 400" "$(post bad.json)" 400
check_eq "log unknown flow 404" "$(http_status -d x "$URL/none")" 404
check_eq "log mode 0600 under umask 022" \
    "$(stat -c %a "$TMP/recv.ndjson")" 600
check_eq "log has accepted envelopes only" \
    "$(jq -r '.["$trigger"].id' "$TMP/recv.ndjson" | tr '\n' ' ')" \
    "$id1 $id2 "
jq -j 'select(.["$trigger"].id == "'"$id1"'") | .["$trigger"].raw' \
    "$TMP/recv.ndjson" >raw1
check "log raw of first byte-exact" cmp -s raw1 body1.json
jq -j 'select(.["$trigger"].id == "'"$id2"'") | .["$trigger"].raw' \
    "$TMP/recv.ndjson" >raw2
check "log raw of second byte-exact" cmp -s raw2 body2.json
check_eq "log line is the flow's envelope" \
    "$(sed -n 1p "$TMP/recv.ndjson" | jq -S -c .)" \
    "$(sed -n 1p "$TMP/flow.ndjson" | jq -S -c .)"

# SIGHUP after logrotate moved the file: a new file takes new lines.
mv "$TMP/recv.ndjson" "$TMP/recv.1.ndjson"
kill -HUP "$SERVER"
sleep 0.3
check_eq "log after SIGHUP 200" "$(post body2.json)" 200
id3=$(jq -r .id body)
check_eq "log new file has the new envelope" \
    "$(jq -r '.["$trigger"].id' "$TMP/recv.ndjson")" "$id3"
check_eq "log old file keeps two lines" \
    "$(wc -l <"$TMP/recv.1.ndjson" | tr -d ' ')" 2
check_eq "log new file mode 0600" "$(stat -c %a "$TMP/recv.ndjson")" 600
check_match "log reopen logged" "$(cat "$TMP/log.log")" "log reopened"
stop

# --log-redact drops headers from the logged copy, not from the flow's.
rm -f "$TMP/flow.ndjson"
start redact --flows flows --log "$TMP/redact.ndjson" \
    --log-redact Authorization --log-redact x-hook-secret
check_eq "redact 200" "$(post body2.json -H 'Authorization: Bearer t0ken' \
    -H 'X-Hook-Secret: s3cret' -H 'X-Other: kept')" 200
logged=$(jq -c '.["$trigger"].headers' "$TMP/redact.ndjson")
check_nomatch "redact drops authorization" "$logged" authorization
check_nomatch "redact drops x-hook-secret" "$logged" s3cret
check_match "redact keeps other headers" "$logged" '"x-other":"kept"'
flowgot=$(jq -c '.["$trigger"].headers' "$TMP/flow.ndjson")
check_match "redact flow gets authorization" "$flowgot" \
    '"authorization":"Bearer t0ken"'
check_match "redact flow gets x-hook-secret" "$flowgot" \
    '"x-hook-secret":"s3cret"'
check_eq "redact raw still logged" \
    "$(jq -j '.["$trigger"].raw' "$TMP/redact.ndjson")" "$(cat body2.json)"
stop
whook-listen --log-redact authorization -- cat </dev/null 2>"$TMP/err"
check_eq "redact without log exit 64" "$?" 64
check_match "redact without log reason" "$(cat "$TMP/err")" "needs --log"

# A log whose writes fail (/dev/full: ENOSPC) is a 503 and no flow runs.
rm -f "$TMP/flow.ndjson"
start full --flows flows --log /dev/full
check_eq "log write fails 503" "$(post body2.json)" 503
check "log write fails no flow run" test ! -e "$TMP/flow.ndjson"
check_match "log write fails logged" "$(cat "$TMP/full.log")" \
    "append failed: No space left on device"
stop
start fullasync --async --flows flows --log /dev/full
check_eq "log write fails async 503" "$(post body2.json)" 503
sleep 0.3
check "log write fails async no flow run" test ! -e "$TMP/flow.ndjson"
stop

# --async: the envelope is in the log by the time the 202 arrives.
start async --async --log "$TMP/async.ndjson" -- sh -c 'sleep 1; cat >/dev/null'
check_eq "log async 202" "$(post body1.json)" 202
check_eq "log async has it before 202" \
    "$(jq -r '.["$trigger"].id' "$TMP/async.ndjson")" "$(jq -r .id body)"
stop

# --accept-id: a valid id is kept end to end, a malformed one ignored.
good=01JFX5RSM3YQ8T0B2C4D6E8G9H
rm -f "$TMP/flow.ndjson"
start accept --flows flows --accept-id --log "$TMP/accept.ndjson"
check_eq "accept id 200" \
    "$(post body2.json -H "Whook-Envelope-Id: $good")" 200
check_eq "accept id in response" "$(jq -r .id body)" "$good"
check_eq "accept id in flow" \
    "$(jq -r '.["$trigger"].id' "$TMP/flow.ndjson")" "$good"
check_eq "accept id in log" \
    "$(jq -r '.["$trigger"].id' "$TMP/accept.ndjson")" "$good"
check_eq "accept id header kept" \
    "$(jq -r '.["$trigger"].headers["whook-envelope-id"]' \
    "$TMP/flow.ndjson")" "$good"
# Lowercase, 25 digits, a first digit beyond 7, a U (not Crockford).
for bad in 01jfx5rsm3yq8t0b2c4d6e8g9h 01JFX5RSM3YQ8T0B2C4D6E8G9 \
    81JFX5RSM3YQ8T0B2C4D6E8G9H 01JFX5RSM3YQ8T0B2C4D6E8G9U; do
	check_eq "accept id malformed $bad 200" \
	    "$(post body2.json -H "Whook-Envelope-Id: $bad")" 200
	got=$(jq -r .id body)
	check_nomatch "accept id malformed $bad not used" "$got" "$bad"
	check_eq "accept id malformed $bad gets a new id" "${#got}" 26
done
check_match "accept id malformed logged" "$(cat "$TMP/accept.log")" \
    "Whook-Envelope-Id ignored"
stop

start noaccept --flows flows
check_eq "no accept id 200" \
    "$(post body2.json -H "Whook-Envelope-Id: $good")" 200
check_nomatch "no accept id header ignored" "$(jq -r .id body)" "$good"
stop
