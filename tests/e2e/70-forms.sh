#!/bin/sh
# One flow in three forms: a shell pipeline of whook programs, the same
# programs in a whook-run flow file, and that flow file run in-process by
# whook-listen --persistent.  The same envelopes (valid, wrong secret,
# invalid value, duplicate key) give the same outputs, exit status and
# rows in each.
. "$(dirname "$0")/../lib.sh"

mkdir cred flows
secret=s3cr3t-$$-forms
printf '%s\n' "$secret" >cred/pay.secret
CREDENTIALS_DIRECTORY=$TMP/cred
export CREDENTIALS_DIRECTORY
rule='{"$trigger": {"body": {"amount": {"_gt": 0}}}}'
template='{"id": "{{$trigger.body.id}}", "amount": "{{$trigger.body.amount}}"}'
cat >flows/pay <<EOF2
#!/usr/bin/env whook-run
whook-check --header x-webhook-secret=@"\${CREDENTIALS_DIRECTORY}/pay.secret"
    --rule '$rule'
| whook-map '$template'
| whook-insert --db "\${WHOOK_DB}" --table pay --create --key id
EOF2
chmod +x flows/pay

# pipeline: the flow as sh(1) runs it, stdin to stdout.
pipeline() {
	whook-check --header "x-webhook-secret=@$CREDENTIALS_DIRECTORY/pay.secret" \
	    --rule "$rule" |
	    whook-map "$template" |
	    whook-insert --db "$WHOOK_DB" --table pay --create --key id
}

# The cases, as the envelopes whook-listen makes, ids fixed.
cat >cases <<'EOF2'
01JFX5RSM3YQ8T0B2C4D6E8G01 right {"id":"p1","amount":10}
01JFX5RSM3YQ8T0B2C4D6E8G02 wrong {"id":"p2","amount":20}
01JFX5RSM3YQ8T0B2C4D6E8G03 right {"id":"p3","amount":-5}
01JFX5RSM3YQ8T0B2C4D6E8G04 right {"id":"p1","amount":30}
01JFX5RSM3YQ8T0B2C4D6E8G05 right {"id":"p5","amount":50}
01JFX5RSM3YQ8T0B2C4D6E8G06 right {"id":"p6","amount":1e400}
EOF2
while read -r id which body; do
	value=$secret
	[ "$which" = wrong ] && value=wrong
	jq -nc --arg id "$id" --arg s "$value" --arg raw "$body" \
	    '{"$trigger": {id: $id, method: "POST", path: "/pay",
	      headers: {"content-type": "application/json",
	                "x-webhook-secret": $s},
	      body: ($raw | fromjson), raw: $raw}}'
done <cases >envelopes.ndjson

# rows DB: the stored rows and the envelope ids recorded with them.
rows() {
	sql "$1" 'SELECT id, amount, typeof(amount) FROM pay ORDER BY id'
	sql "$1" 'SELECT count(*) FROM whook_seen'
}

# statuses FILE: "ID STATUS" for each outcome line, 200 when no $error.
statuses() {
	jq -r '"\(.["$trigger"].id) \(.["$error"].status // 200)"' "$1"
}

for outcomes in 1 0; do
	export WHOOK_OUTCOMES=$outcomes
	WHOOK_DB=$TMP/sh$outcomes.db pipeline <envelopes.ndjson \
	    >sh$outcomes.out 2>sh$outcomes.err
	sh_status=$?
	WHOOK_DB=$TMP/run$outcomes.db ./flows/pay <envelopes.ndjson \
	    >run$outcomes.out 2>run$outcomes.err
	run_status=$?
	check_eq "outcomes=$outcomes pipeline exit 65" "$sh_status" 65
	check_eq "outcomes=$outcomes whook-run same exit" "$run_status" \
	    "$sh_status"
	check "outcomes=$outcomes whook-run same output" \
	    cmp -s sh$outcomes.out run$outcomes.out
	check_eq "outcomes=$outcomes whook-run same rows" \
	    "$(rows "$TMP/run$outcomes.db")" "$(rows "$TMP/sh$outcomes.db")"
	check_eq "outcomes=$outcomes whook-run same messages" \
	    "$(cat run$outcomes.err)" "$(cat sh$outcomes.err)"
done
unset WHOOK_OUTCOMES
check_eq "pipeline outcome lines" "$(wc -l <sh1.out | tr -d ' ')" 6
check_eq "pipeline statuses" "$(statuses sh1.out | tr '\n' ' ')" \
    "01JFX5RSM3YQ8T0B2C4D6E8G01 200 01JFX5RSM3YQ8T0B2C4D6E8G02 403 01JFX5RSM3YQ8T0B2C4D6E8G03 403 01JFX5RSM3YQ8T0B2C4D6E8G04 409 01JFX5RSM3YQ8T0B2C4D6E8G05 200 01JFX5RSM3YQ8T0B2C4D6E8G06 422 "
check_eq "pipeline rows" "$(rows "$TMP/sh1.db" | tr '\n' ' ')" \
    "p1|10|integer p5|50|integer 2 "
check_eq "plain filter passes two" "$(wc -l <sh0.out | tr -d ' ')" 2

# 1e400 is infinity to jq 1.6, which writes it as the largest double: the
# row contains that double whether the value crossed a pipe or not.
cat >flows/real <<'EOF2'
#!/usr/bin/env whook-run
whook-map '{"v": "{{$trigger.body.v}}"}' |
whook-insert --db "${WHOOK_DB}" --table r --create
EOF2
chmod +x flows/real
printf '%s\n' '{"$trigger":{"id":"r1","body":{"v":1.5}}}' \
    '{"$trigger":{"id":"r2","body":{"v":1e400}}}' >real.ndjson
WHOOK_DB=$TMP/real-run.db ./flows/real <real.ndjson >/dev/null
whook-map '{"v": "{{$trigger.body.v}}"}' <real.ndjson |
    WHOOK_DB=$TMP/real-sh.db whook-insert --db "$TMP/real-sh.db" --table r \
    --create >/dev/null
check_eq "infinity stored as the largest double" \
    "$(sql "$TMP/real-run.db" 'SELECT v FROM r ORDER BY v')" \
    "$(printf '1.5\n1.79769313486232e+308')"
check_eq "infinity same in both forms" \
    "$(sql "$TMP/real-run.db" 'SELECT v FROM r ORDER BY v')" \
    "$(sql "$TMP/real-sh.db" 'SELECT v FROM r ORDER BY v')"

# Two inserts into one database cannot share a process, because the
# first holds the write lock until its batch commits: whook-run refuses
# such a flow file at once, and the shell pipeline stores both rows.
cat >flows/twodb <<'EOF2'
#!/usr/bin/env whook-run
whook-insert --db "${WHOOK_DB}" --table a --create |
whook-map '{"rowid": "{{$last.rowid}}"}' |
whook-insert --db "${WHOOK_DB}" --table b --create --no-dedupe
EOF2
chmod +x flows/twodb
printf '%s\n' '{"$trigger":{"id":"t1"},"$last":{"v":1}}' >twodb.ndjson
WHOOK_DB=$TMP/twodb.db ./flows/twodb <twodb.ndjson >/dev/null 2>twodb.err
check_eq "two inserts one database exit 64" "$?" 64
check_match "two inserts one database reason" "$(cat twodb.err)" \
    "whook-insert: --db $TMP/twodb.db: an earlier step of the flow writes it"
sed 1d flows/twodb >twodb.sh
WHOOK_DB=$TMP/twodb.db sh twodb.sh <twodb.ndjson >/dev/null
check_eq "two inserts pipeline rows" "$(sql "$TMP/twodb.db" \
    'SELECT (SELECT count(*) FROM a) || (SELECT count(*) FROM b)')" 11

# A key given twice: libjq keeps the last, and so must the output, so
# that what a step checked is what the next one gets.
jq -c '.["$trigger"]' envelopes.ndjson | head -n 1 | jq -c --arg s "$secret" \
    '{"wrong": (.headers["x-webhook-secret"] = "wrong" | .body.amount = 99),
      "right": .}' |
    sed 's/^{"wrong":\(.*\),"right":\(.*\)}$/{"$trigger":\1,"$trigger":\2}/' \
    >twice.ndjson
WHOOK_DB=$TMP/twice-sh.db pipeline <twice.ndjson >twice-sh.out 2>/dev/null
WHOOK_DB=$TMP/twice-run.db ./flows/pay <twice.ndjson >twice-run.out 2>/dev/null
check_eq "key twice, last kept" \
    "$(jq -c '.["$trigger"].body.amount' twice-sh.out)" 10
check "key twice, same output" cmp -s twice-sh.out twice-run.out
check_eq "key twice, same rows" "$(rows "$TMP/twice-run.db")" \
    "$(rows "$TMP/twice-sh.db")"

# whook-listen --persistent: each envelope's request, in order, with its
# id through --accept-id; the response statuses and rows must match.
PORT=$(free_port)
WHOOK_DB=$TMP/listen.db spawn whook-listen --listen "127.0.0.1:$PORT" \
    --persistent --accept-id --flows flows 2>listen.err
SERVER=$LAST_PID
wait_port "$PORT"
while read -r id which body; do
	value=$secret
	[ "$which" = wrong ] && value=wrong
	status=$(http_status -H 'Content-Type: application/json' \
	    -H "X-Webhook-Secret: $value" -H "Whook-Envelope-Id: $id" \
	    -d "$body" "http://127.0.0.1:$PORT/pay")
	echo "$id $status"
done <cases >listen.statuses
kill "$SERVER"
wait "$SERVER"
check_eq "listen stops exit 0" "$?" 0
check_match "listen ran in-process" "$(cat listen.err)" "runs in-process"
check_eq "listen same statuses" "$(cat listen.statuses)" "$(statuses sh1.out)"
check_eq "listen same rows" "$(rows "$TMP/listen.db")" "$(rows "$TMP/sh1.db")"
check_eq "listen same ids recorded" \
    "$(sql "$TMP/listen.db" 'SELECT * FROM whook_seen ORDER BY 1' | cut -d'|' -f1)" \
    "$(sql "$TMP/sh1.db" 'SELECT * FROM whook_seen ORDER BY 1' | cut -d'|' -f1)"
for step in whook-check whook-insert; do
	check_eq "listen same $step messages" \
	    "$(grep "^$step:" listen.err)" "$(grep "^$step:" sh1.err)"
done
