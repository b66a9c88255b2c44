#!/bin/sh
# whook-map end to end: the corpus's template cases, the template that
# flows.d/transactions ships, jq placeholders, --as, --strict and the
# 422 outcome, template errors at start, and a stream of 1000 envelopes
# through one process.
. "$(dirname "$0")/../lib.sh"

# envelope_of CASE: prints an envelope made from the case's request.http,
# with the method of its request line and the JSON body after the blank
# line.  The body is pasted as text, so big integers stay exact.
envelope_of() {
	req=$1/request.http
	method=$(head -n 1 "$req" | cut -d ' ' -f 1)
	body=$(awk '{ if (b) print; else { sub(/\r$/, ""); if ($0 == "") b = 1 } }' \
	    "$req")
	printf '{"$trigger":{"id":"%s","method":"%s","body":%s}}\n' \
	    "$(basename "$1")" "$method" "$body"
}

# same_json NAME GOT EXPECTED: compares two JSON texts as values.
same_json() {
	check_eq "$1" "$(printf '%s\n' "$2" | jq -S -c .)" \
	    "$(printf '%s\n' "$3" | jq -S -c .)"
}

# last_of LINE: prints the envelope's $last.
last_of() {
	printf '%s\n' "$1" | jq -c '.["$last"]'
}

# Corpus cases: each is skipped, printing nothing, when the corpus is
# absent.
for name in 080-template-types 081-template-array-index; do
	dir=$(corpus_case "$name")
	[ -n "$dir" ] || continue
	out=$(envelope_of "$dir" | whook-map @"$dir/template.json")
	check_eq "$name exit" $? 0
	same_json "$name result" "$(last_of "$out")" "$(cat "$dir/expected.json")"
done
dir=$(corpus_case 080-template-types)
if [ -n "$dir" ]; then
	# jq -S rounds 9007199254740993, so the digits are checked as text.
	out=$(envelope_of "$dir" | whook-map @"$dir/template.json")
	check_match "080 bignum exact" "$out" '"id":9007199254740993,"qty"'
	check_match "080 bignum in text" "$out" \
	    '"line":"Order 9007199254740993 x3 ok=false"'
fi
dir=$(corpus_case 061-slack-url-verification)
if [ -n "$dir" ]; then
	out=$(envelope_of "$dir" |
	    whook-map '{"challenge":"{{$trigger.body.challenge}}"}')
	same_json "061 challenge" "$(last_of "$out")" \
	    '{"challenge":"chal_invented_4f7a9c"}'
fi

# The template of flows.d/transactions, newline included.
cat >tx.ndjson <<'EOF'
{"$trigger":{"id":"t1","method":"POST","body":{"id":"ch_1","amount":2000,"currency":"usd","customer":"cus_9"}}}
EOF
out=$(whook-map '{"id": "{{$trigger.body.id}}", "amount": "{{$trigger.body.amount}}",
              "currency": "{{$trigger.body.currency}}", "customer_id": "{{$trigger.body.customer}}"}' \
    <tx.ndjson)
check_eq "flow template exit" $? 0
same_json "flow template result" "$(last_of "$out")" \
    '{"id":"ch_1","amount":2000,"currency":"usd","customer_id":"cus_9"}'
check_eq "flow amount is number" \
    "$(printf '%s\n' "$out" | jq -r '.["$last"].amount | type')" number
check_eq "trigger kept" \
    "$(printf '%s\n' "$out" | jq -c '.["$trigger"].body.id')" '"ch_1"'

# --as KEY stores the same value under KEY.
out=$(whook-map --as row '{"c": "{{$trigger.body.currency}}"}' <tx.ndjson)
check_eq "as key value" "$(printf '%s\n' "$out" | jq -c .row)" '{"c":"usd"}'
check_eq "as key last" "$(last_of "$out")" '{"c":"usd"}'
out=$(whook-map -a row '"{{$trigger.body.amount}}"' <tx.ndjson)
check_eq "as short option" "$(printf '%s\n' "$out" | jq -c .row)" 2000

# jq placeholders: . is $trigger, and the variables are bound.
cat >items.ndjson <<'EOF'
{"$trigger":{"id":"j1","body":{"items":[{"sku":"A","qty":2},{"sku":"B","qty":5}]}},"$last":{"n":1}}
EOF
out=$(whook-map '{"count": "{{ .body.items | length }}",
    "skus": "{{ [.body.items[].sku] | join(\",\") }}",
    "total": "{{ [$trigger.body.items[].qty] | add }}",
    "note": "{{ .body.items | length }} items, last {{ $last.n }}",
    "all": "{{ $envelope | keys }}"}' <items.ndjson)
same_json "jq placeholders" "$(last_of "$out")" \
    '{"count":2,"skus":"A,B","total":7,"note":"2 items, last 1",
    "all":["$last","$trigger"]}'
out=$(whook-map '{"{{$trigger.id}}-{{ .body.items[0].sku }}": true}' \
    <items.ndjson)
same_json "placeholders in key" "$(last_of "$out")" '{"j1-A":true}'

# The man page's jq example.
cat >summary.ndjson <<'EOF'
{"$trigger":{"id":"s1","body":{"customer":"cus_9","items":[1,2,3]}}}
{"$trigger":{"id":"s2","body":{"items":[]}}}
EOF
whook-map --strict --as summary \
    '{"customer": "{{$trigger.body.customer}}",
      "items": "{{ .body.items | length }}",
      "text": "{{ .body.items | length }} items for {{$trigger.body.customer}}"}' \
    <summary.ndjson >summary.out 2>summary.err
check_eq "example exit" $? 65
same_json "example summary" "$(jq -c .summary summary.out)" \
    '{"customer":"cus_9","items":3,"text":"3 items for cus_9"}'
check_match "example rejects s2" "$(cat summary.err)" \
    'whook-map: s2: {{$trigger.body.customer}}: no value'

# A missing value is null alone and "" in text, unless --strict.
out=$(whook-map '{"a": "{{$trigger.body.nope}}", "b": "<{{$last.nope}}>"}' \
    <tx.ndjson)
check_eq "missing exit" $? 0
same_json "missing values" "$(last_of "$out")" '{"a":null,"b":"<>"}'

whook-map --strict '{"a": "x{{$trigger.body.nope}}"}' <tx.ndjson \
    >strict.out 2>strict.err
check_eq "strict missing exit" $? 65
check_eq "strict missing dropped" "$(wc -l <strict.out | tr -d ' ')" 0
check_match "strict reason" "$(cat strict.err)" \
    'whook-map: t1: {{$trigger.body.nope}}: no value'
whook-map -s '{"a": "{{$trigger.body.amount}}"}' <tx.ndjson >strict.out
check_eq "strict present exit" $? 0

WHOOK_OUTCOMES=1 whook-map --strict '{"a": "{{$trigger.body.nope}}"}' \
    <tx.ndjson >outcome.out 2>/dev/null
check_eq "outcome strict exit" $? 65
check_eq "outcome status" "$(jq -c '.["$error"].status' outcome.out)" 422
check_eq "outcome step" "$(jq -r '.["$error"].step' outcome.out)" whook-map
check_eq "outcome reason" "$(jq -r '.["$error"].reason' outcome.out)" \
    '{{$trigger.body.nope}}: no value'
check_eq "outcome no last" "$(jq -c '.["$last"]' outcome.out)" null

# A jq runtime error rejects the envelope even without --strict.
WHOOK_OUTCOMES=1 whook-map '{"a": "{{ .body.currency | tonumber }}"}' \
    <tx.ndjson >jqerr.out 2>jqerr.err
check_eq "jq error exit" $? 65
check_eq "jq error status" "$(jq -c '.["$error"].status' jqerr.out)" 422
check_match "jq error reason" "$(jq -r '.["$error"].reason' jqerr.out)" \
    '{{.body.currency | tonumber}}: jq: '

# Under WHOOK_OUTCOMES an envelope that has $error passes untouched.
cat >failed.ndjson <<'EOF'
{"$trigger":{"id":"f1"},"$error":{"status":403,"step":"whook-check","reason":"x"}}
EOF
out=$(WHOOK_OUTCOMES=1 whook-map --strict '"{{$trigger.nope}}"' <failed.ndjson)
check_eq "error passes" "$out" "$(cat failed.ndjson)"

# Template errors are usage errors at start.
for t in '{"a":' '{"a": "{{ $trigger.id"}' '{"a": "{{ .x | }}"}' \
    '{"a": "{{ }}"}' '{"a": "{{ nosuch(1) }}"}'; do
	err=$(whook-map "$t" </dev/null 2>&1)
	check_eq "bad template exit: $t" $? 64
	check_match "bad template message: $t" "$err" 'whook-map: template: '
done
err=$(whook-map '{"a": [1,' </dev/null 2>&1)
check_nomatch "bad JSON message short" "$err" 'while parsing'
err=$(whook-map '{"a": "{{ nosuch(1) }}"}' </dev/null 2>&1)
check_match "bad jq names placeholder" "$err" \
    'template: {{nosuch(1)}}: jq: error: nosuch/1 is not defined'

# @FILE reads the template from a file.
cat >t.json <<'EOF'
{"cur": "{{$trigger.body.currency}}",
 "env": "{{$env.WHOOK_MAP_TEST}}"}
EOF
out=$(WHOOK_MAP_TEST=e1 whook-map @t.json <tx.ndjson)
same_json "template file" "$(last_of "$out")" '{"cur":"usd","env":"e1"}'
whook-map @nonexistent.json </dev/null 2>err.txt
check_eq "missing file exit" $? 66
check_match "missing file message" "$(cat err.txt)" \
    'whook-map: nonexistent.json: No such file or directory'

# Options.
out=$(whook-map -h)
check_eq "help exit" $? 0
check_match "help usage" "$out" 'usage: whook-map'
out=$(whook-map --help 2>/dev/null)
check_match "help long" "$out" '--strict'
check_eq "version" "$(whook-map --version)" "whook-map $(sed -n \
    's/^#define WHOOK_VERSION "\(.*\)"/\1/p' "$ROOT/src/whook.h")"
whook-map </dev/null >out.txt 2>err.txt
check_eq "no template exit" $? 64
check_match "no template usage" "$(cat err.txt)" 'usage: whook-map'
check_eq "no template stdout" "$(cat out.txt)" ""
whook-map --bogus '{}' </dev/null 2>err.txt
check_eq "bad option exit" $? 64
whook-map '{}' '{}' </dev/null 2>err.txt
check_eq "two templates exit" $? 64
whook-map --as '$last' '{}' </dev/null 2>err.txt
check_eq "reserved key exit" $? 64
check_match "reserved key message" "$(cat err.txt)" 'invalid key "$last"'
whook-map -v '"{{ .id }}"' <tx.ndjson >/dev/null 2>err.txt
check_match "verbose line" "$(cat err.txt)" 'whook-map: t1: rendered into $last'

# A stream of 1000 envelopes through one process: the jq program is
# compiled once, so it takes far below the 20 s or so that a jq 1.6
# compile per envelope (about 20 ms each) would cost.
awk 'BEGIN { for (i = 1; i <= 1000; i++)
    printf "{\"$trigger\":{\"id\":\"e%d\",\"body\":{\"n\":%d}}}\n", i, i }' \
    >stream.ndjson
start=$(date +%s)
whook-map '{"n": "{{$trigger.body.n}}", "double": "{{ .body.n * 2 }}"}' \
    <stream.ndjson >stream.out
check_eq "stream exit" $? 0
elapsed=$(($(date +%s) - start))
check_eq "stream lines" "$(wc -l <stream.out | tr -d ' ')" 1000
check_eq "stream last" "$(tail -n 1 stream.out | jq -c '.["$last"]')" \
    '{"n":1000,"double":2000}'
check_eq "stream order" "$(jq -r '.["$last"].n' stream.out | sort -n -c &&
    echo sorted)" sorted
check "stream under 10 s" [ "$elapsed" -lt 10 ]

# A long stream: lines in order, messages in order and naming the right
# lines, long strings and big integers kept.  Line 1500 is not JSON,
# 2000 is blank, 2500 is not an object.
awk 'BEGIN { f = sprintf("%300s", ""); gsub(/ /, "y", f)
    for (i = 1; i <= 3000; i++) {
	if (i == 1500) print "{\"$trigger\":"
	else if (i == 2000) print ""
	else if (i == 2500) print "[1]"
	else printf "{\"$trigger\":{\"id\":\"e%d\",\"body\":{\"n\":%d,\"big\":%s,\"f\":\"%s%d\"}}}\n", i, i, "9007199254740993", f, i
    } }' >long.ndjson
whook-map '{"n": "{{$trigger.body.n}}", "f": "{{$trigger.body.f}}"}' \
    <long.ndjson >long.out 2>long.err
check_eq "long stream exit" $? 65
check_eq "long stream lines" "$(wc -l <long.out | tr -d ' ')" 2997
check_eq "long stream order" "$(jq -r '.["$last"].n' long.out |
    awk '$1 <= prev { bad = 1 } { prev = $1 }
	END { print bad ? "no" : "yes" }')" yes
check_eq "long stream strings kept" "$(jq -r '.["$last"] |
    select(.f != ("y" * 300) + (.n | tostring)) | .n' long.out | head -n 3)" ""
check_eq "long stream big integers kept" \
    "$(grep -c '"big":9007199254740993,' long.out)" 2997
# A line over the 256 MiB limit is skipped with a message and exit 65,
# read from a file at once or from a pipe in pieces.  The sparse file's
# zero bytes cost no disk.
truncate -s 270M huge.ndjson
printf '\n{"$trigger":{"id":"after"}}\n' >>huge.ndjson
whook-map '{"n": 1}' <huge.ndjson >huge.out 2>huge.err
check_eq "huge line from a file exit" $? 65
check_eq "huge line from a file, next kept" \
    "$(jq -r '.["$trigger"].id' huge.out)" after
check_match "huge line message" "$(cat huge.err)" \
    "stdin:1: line longer than 268435456 bytes, skipped"
cat huge.ndjson | whook-map '{"n": 1}' >huge.out 2>huge.err
check_eq "huge line from a pipe exit" $? 65
check_eq "huge line from a pipe, next kept" \
    "$(jq -r '.["$trigger"].id' huge.out)" after
rm -f huge.ndjson
check_eq "long stream messages" \
    "$(sed -n 's/^whook-map: \(stdin:[0-9]*\): .*/\1/p' long.err)" \
    "$(printf 'stdin:1500\nstdin:2500')"

# A long raw body, escaped, comes out as it went in when the template
# does not read it, and whole when it does.  So does the raw_base64 of a
# binary body.  A raw body with a \u escape is read whole, and one with
# a bad escape is rejected.
awk 'BEGIN {
	f = sprintf("%400s", ""); gsub(/ /, "r", f)
	printf "{\"$trigger\":{\"id\":\"r1\",\"body\":{\"a\":1},"
	printf "\"raw\":\"{\\\"a\\\":1,\\n\\\"f\\\":\\\"%s\\\\\\\\\\/\\\"}\"}}\n", f
	printf "{\"$trigger\":{\"id\":\"r2\",\"raw_base64\":\"%s\"}}\n", f
	printf "{\"$trigger\":{\"id\":\"r3\",\"raw\":\"%s\\u00e9\"}}\n", f
}' >raw.ndjson
whook-map '{"a": "{{$trigger.body.a}}"}' <raw.ndjson >raw.out
check_eq "long raw exit" $? 0
check_eq "long raw kept as text" \
    "$(sed 's/,"$last":{"a":[0-9a-z]*}}$/}/' raw.out)" "$(cat raw.ndjson)"
whook-map '"{{$trigger.raw}}"' <raw.ndjson >raw.out
check_eq "long raw read" "$(jq -c '.["$last"]' raw.out)" \
    "$(jq -c '.["$trigger"].raw' raw.ndjson)"
whook-map '"{{$trigger.raw_base64}}"' <raw.ndjson >raw.out
check_eq "long raw_base64 read" "$(jq -c '.["$last"]' raw.out)" \
    "$(jq -c '.["$trigger"].raw_base64' raw.ndjson)"
sed -n 1p raw.ndjson | sed 's/\\n/\\q/' |
    whook-map '{"a": 1}' >raw.out 2>raw.err
check_eq "long raw with a bad escape exit" $? 65
check_match "long raw with a bad escape message" "$(cat raw.err)" \
    "stdin:1: invalid JSON: Invalid escape"
