#!/bin/sh
# whook-listen against the request corpus (cases 001-042) through a real
# socket: its own --listen listener, and one process per connection behind
# systemd-socket-activate --inetd.  Every case must get a status of the
# class its case.json allows; an accepted request must give exactly one
# envelope with the exact raw body and the facts its expect.md lists, and
# a rejected one none.  Without the corpus the test prints nothing.
. "$(dirname "$0")/../lib.sh"

require_corpus

# final_status FILE: the last status code in a raw response, 100 aside.
final_status() {
	grep -a '^HTTP/' "$1" | grep -av '^HTTP/1\.[01] 100 ' | tail -n 1 |
	    cut -d ' ' -f 2
}

# class_ok STATUS CLASS: CLASS is "2xx", "4xx or 2xx", "2xx or 411"...
class_ok() {
	for alt in $(echo "$2" | sed 's/ or / /g'); do
		case $alt in
		?xx) [ "${1%??}" = "${alt%xx}" ] && return 0 ;;
		*) [ "$1" = "$alt" ] && return 0 ;;
		esac
	done
	return 1
}

# facts CASE: jq conditions on $trigger that must be true, one a line.
facts() {
	case $1 in
	001-*)
		echo '.method == "POST" and .path == "/hooks/orders"'
		echo '.query == {"source": "shop", "attempt": "2"}'
		echo '(["host", "user-agent", "content-type", "x-request-id",
		    "content-length"] - (.headers | keys)) == []'
		echo '.body.order.total == 42.5 and .body.order.paid == true'
		echo '(.body.order | has("note")) and .body.order.note == null'
		echo '.remote | test("^127\\.0\\.0\\.1:[0-9]+$")'
		echo '.received_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")'
		echo '.id | test("^[0-9A-HJKMNP-TV-Z]{26}$")'
		;;
	002-*)
		echo '(.headers | keys) == ["content-length", "content-type",
		    "host", "x-github-delivery", "x-github-event",
		    "x-hub-signature-256"]'
		echo '.headers["x-github-event"] == "ping"'
		echo '.body.zen == "Keep it logically awesome."'
		;;
	003-*)
		echo '.headers["x-forwarded-for"] ==
		    "203.0.113.7, 198.51.100.23, 192.0.2.9"'
		echo '.headers["x-tag"] == "alpha, beta"'
		;;
	004-*)
		echo '.body.text == "hello chunked world" and .body.n == 3'
		;;
	007-*) echo '.body.same == true' ;;
	010-*)
		echo '.body.build.id == 5521'
		echo '(.body.build.log | length) == 1100'
		;;
	012-*) echo '.body.lf == "only"' ;;
	013-*) echo '.headers["x-note"] == "left right"' ;;
	014-*)
		echo '.headers["x-large"] | length == 8000 and test("^v+$")'
		;;
	018-*) echo '.body.legacy == true' ;;
	019-* | 020-*) echo '.body == null and .raw == ""' ;;
	024-*)
		echo '.method == "GET" and .path == "/hooks/q" and
		    .body == null'
		echo '.query.a == ["1", "2"] and .query.b == " x" and
		    .query.c == " "'
		echo '.query.d == "€" and .query.e == "x=y"'
		echo '.query.empty == "" and .query.flag == ""'
		;;
	025-*)
		echo '.path == "/hooks/deploy%20prod/run"'
		echo '.query.ref == "refs/heads/main"'
		;;
	026-*) echo '.body.name == "Zoë"' ;;
	027-*)
		echo '.body.data.amount == 990 and
		    .body.type == "com.example.order.paid"'
		;;
	028-*)
		echo '.body | fromjson | .Type == "SubscriptionConfirmation"'
		;;
	029-*)
		echo '.body.a == ["1", "2"] and .body["tags[]"] == ["x", "y"]'
		echo '.body.msg == "hello world!"'
		echo '.body.empty == "" and .body.flag == ""'
		echo '.body.payload | fromjson | .ref == "refs/heads/main"'
		;;
	031-*)
		echo '.body.recipient == "support@example.test"'
		echo '.body.subject == "Grüße aus dem Test"'
		echo '.body["body-plain"] == "Line one\r\nLine two\r\n"'
		echo '.body["attachment-count"] == "1"'
		echo '.body["attachment-1"] | .filename == "note.txt" and
		    .content_type == "text/plain" and .size == 18'
		echo '.body["attachment-1"].data | @base64d | length == 18'
		;;
	035-*)
		echo '.body.e == "café" and .body.emoji == "\ud83d\ude00"'
		echo '.body.nul == "a\u0000b" and (.body.nul | length) == 3'
		echo '.body.slash == "a/b" and (.body.ctl | contains("\t"))'
		echo '.body.q == "say \"hi\""'
		;;
	037-*)
		echo '.body.bom == true and .body.from == "sharepoint"'
		echo '.raw | startswith("\ufeff")'
		;;
	040-*)
		echo '(.body | length) == 2 and .body[1].event == "open"'
		;;
	esac
}

# one_a_line: joins each indented line to the fact before it.
one_a_line() {
	awk '/^[ \t]/ { f = f " " $0; next }
	    { if (f != "") print f; f = $0 }
	    END { if (f != "") print f }'
}

# jq_true EXPR FILE: passes when EXPR is true on the JSON in FILE.
jq_true() {
	jq -e "$1" "$2" >/dev/null
}

# raw_sha TRIGGER_FILE: the sha256 of the raw body an envelope carries.
raw_sha() {
	if jq -e 'has("raw")' "$1" >/dev/null; then
		jq -j '.raw' "$1" | sha256sum | cut -d ' ' -f 1
	else
		jq -r '.raw_base64' "$1" | base64 -d | sha256sum |
		    cut -d ' ' -f 1
	fi
}

# check_case MODE CASE OUT: sends CASE and checks the answer and what
# appeared in the envelope file OUT.
check_case() {
	mode=$1 name=$2 out=$3 dir=$CORPUS/$2
	before=$(wc -l <"$out")
	"$CORPUS/run-case.sh" "$dir" "$PORT" 5 >"$TMP/resp" 2>/dev/null
	status=$(final_status "$TMP/resp")
	class=$(jq -r .status_class "$dir/case.json")
	check "$mode $name: status class" \
	    class_ok "${status:-none}" "$class"
	after=$(wc -l <"$out")
	case $status in
	2??) ;;
	*)
		check_eq "$mode $name: no envelope" "$after" "$before"
		return
		;;
	esac
	check_eq "$mode $name: one envelope" "$after" $((before + 1))
	tail -n 1 "$out" | jq '.["$trigger"]' >"$TMP/trigger"
	check_eq "$mode $name: raw body sha256" "$(raw_sha "$TMP/trigger")" \
	    "$(jq -r .raw_body_sha256 "$dir/case.json")"
	i=0
	facts "$name" | one_a_line | while IFS= read -r fact; do
		i=$((i + 1))
		check "$mode $name: fact $i" jq_true "$fact" "$TMP/trigger"
	done
}

# check_exact MODE OUT: the big integers of case 033 keep their digits.
check_exact() {
	line=$(grep -a '"/hooks/pay"' "$2" | tail -n 1)
	check_match "$1 033: 2^64 and more exact" "$line" \
	    '"amount":12345678901234567890'
	check_match "$1 033: 2^53+1 exact" "$line" '"id":9007199254740993'
	check_match "$1 033: negative beyond int64" "$line" \
	    '"neg":-9223372036854775809'
}

# check_continue MODE: case 010 gets one interim 100 and one final status.
check_continue() {
	"$CORPUS/run-case.sh" "$CORPUS/010-expect-100-continue" "$PORT" 5 \
	    >"$TMP/resp" 2>/dev/null
	check_eq "$1 010: one 100 Continue" \
	    "$(grep -ac '^HTTP/1\.1 100 ' "$TMP/resp")" 1
	check_eq "$1 010: one final status" \
	    "$(grep -a '^HTTP/' "$TMP/resp" | grep -avc ' 100 ')" 1
}

cases=$(cd "$CORPUS" && ls -d 0[0-4][0-9]-* 2>/dev/null)

for mode in listen inetd; do
	out=$TMP/$mode.ndjson
	: >"$out"
	PORT=$(free_port)
	if [ "$mode" = listen ]; then
		spawn whook-listen --listen "127.0.0.1:$PORT" \
		    --method GET,POST >"$out" 2>"$TMP/$mode.log"
	else
		# stdout is the connection under --inetd, so a flow keeps
		# the envelopes.
		spawn systemd-socket-activate --inetd -a \
		    -l "127.0.0.1:$PORT" "$BIN/whook-listen" \
		    --method GET,POST -- sh -c 'tee -a "$1"' sh "$out" \
		    2>"$TMP/$mode.log"
	fi
	server=$LAST_PID
	[ -n "${DEBUG:-}" ] && cat "$TMP/$mode.log" >&2
	check "$mode: port open" wait_port "$PORT"
	[ -n "${DEBUG:-}" ] && cat "$TMP/$mode.log" >&2
	for name in $cases; do
		check_case "$mode" "$name" "$out"
	done
	check_exact "$mode" "$out"
	check_continue "$mode"
	kill "$server"
	wait "$server" 2>/dev/null
	check_nomatch "$mode: no sanitizer report" \
	    "$(cat "$TMP/$mode.log")" "Sanitizer"
	check_nomatch "$mode: no header value logged" \
	    "$(cat "$TMP/$mode.log")" "req-7f3a"
done
