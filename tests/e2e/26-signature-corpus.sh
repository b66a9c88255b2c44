#!/bin/sh
# The signature cases of the request corpus (050 to 072), each sent byte
# for byte with the corpus's run-case.sh to whook-listen.  The flow
# checks the case's scheme with its secret and clock, and 070 and 071
# run once with the case's rule and once with --header.  Each response
# must have the status class of case.json, a 2xx must store a row and a
# 4xx none, and no response or log line may contain a secret or the
# digest a verifier computes.  Prints nothing when the corpus is absent.
. "$(dirname "$0")/../lib.sh"

require_corpus

mkdir flows cred
DB=$TMP/corpus.db
sql "$DB" 'CREATE TABLE t (label TEXT, id TEXT)'
: >responses
: >digests

PORT=$(free_port)
spawn whook-listen --listen "127.0.0.1:$PORT" --flows "$TMP/flows" \
    2>listen.log
wait_port "$PORT" || fail "server on $PORT" "not listening"

# digests CASE SCHEME SECRET...: prints, one a line, the digest that a
# verifier computes from CASE's request.http for each secret, as the
# scheme writes it (hex or base64).
digests() {
	python3 - "$@" <<'EOF'
import base64, hashlib, hmac, sys, urllib.parse
case, scheme, secrets = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(case + "/request.http", "rb").read()
head, _, body = data.partition(b"\r\n\r\n")
headers = {}
for line in head.split(b"\r\n")[1:]:
    name, _, value = line.partition(b":")
    headers[name.strip().lower().decode()] = value.strip()
for secret in secrets:
    key, algo, enc = secret.encode(), hashlib.sha256, "hex"
    if scheme == "github" or scheme == "shopify":
        msg = body
        enc = "base64" if scheme == "shopify" else "hex"
    elif scheme == "stripe":
        fields = dict(f.split(b"=", 1)
                      for f in headers["stripe-signature"].split(b","))
        msg = fields[b"t"] + b"." + body
    elif scheme == "slack":
        msg = b"v0:" + headers["x-slack-request-timestamp"] + b":" + body
    elif scheme == "standard-webhooks":
        key = base64.b64decode(secret.removeprefix("whsec_"))
        msg = (headers["webhook-id"] + b"." + headers["webhook-timestamp"]
               + b"." + body)
        enc = "base64"
    else:
        fields = sorted(urllib.parse.parse_qsl(body.decode(), True))
        msg = (scheme[len("twilio:"):] +
               "".join(k + v for k, v in fields)).encode()
        algo, enc = hashlib.sha1, "base64"
    mac = hmac.new(key, msg, algo).digest()
    print(mac.hex() if enc == "hex" else base64.b64encode(mac).decode())
EOF
}

# install_flow CASE LABEL CHECK_ARGS: puts at the path CASE's request
# names a flow that runs whook-check with CHECK_ARGS and stores LABEL.
# The flow is renamed into place, so that no request runs half of it.
install_flow() {
	path=$(head -n 1 "$1/request.http" | cut -d ' ' -f 2)
	path=${path%%\?*}
	mkdir -p "flows${path%/*}"
	cat >flows/.next <<EOF
#!/bin/sh
whook-check $3 \\
| whook-map '{"label": "$2", "id": "{{\$trigger.id}}"}' \\
| whook-insert --db '$DB' --table t
EOF
	chmod +x flows/.next
	mv flows/.next "flows$path"
}

# run_case CASE LABEL CLASS STATUS: sends CASE and checks its status
# class CLASS (2xx or 4xx), the status STATUS when not empty, and the
# rows stored under LABEL.
run_case() {
	"$CORPUS/run-case.sh" "$1" "$PORT" 5 >response 2>>run-case.log
	status=$(head -n 1 response | sed -n 's|^HTTP/1\.[01] \([0-9]*\).*|\1|p')
	cat response >>responses
	check_eq "$2: status class" "${status%??}xx" "$3"
	if [ -n "$4" ]; then
		check_eq "$2: status" "$status" "$4"
	fi
	rows=0
	[ "$3" = 2xx ] && rows=1
	check_eq "$2: rows" \
	    "$(sql "$DB" "SELECT count(*) FROM t WHERE label = '$2'")" "$rows"
}

# secret_file LABEL VALUE: writes VALUE to a secret file, prints its path.
secret_file() {
	printf '%s\n' "$2" >"cred/$1"
	echo "$TMP/cred/$1"
}

# signature_case CASE LABEL CLASS SECRET...: checks CASE with its scheme
# and clock, given SECRET as --secret (every one of them).
signature_case() {
	dir=$1 label=$2 class=$3
	shift 3
	scheme=$(jq -r '.signature.scheme
	    | if . == "github-sha256" then "github" else . end' "$dir/case.json")
	if [ "$scheme" = twilio ]; then
		scheme=twilio:$(jq -r .signature.url "$dir/case.json")
	fi
	args="--signature '$scheme'"
	i=0
	for secret in "$@"; do
		i=$((i + 1))
		args="$args --secret @$(secret_file "$label.$i" "$secret")"
	done
	now=$(jq -r '.now // empty' "$dir/case.json")
	tolerance=$(jq -r '.signature.tolerance // 300' "$dir/case.json")
	[ -n "$now" ] && args="$args --now $now --tolerance $tolerance"
	install_flow "$dir" "$label" "$args"
	want=
	[ "$class" = 4xx ] && want=401
	run_case "$dir" "$label" "$class" "$want"
	digests "$dir" "$scheme" "$@" >>digests
}

for dir in "$CORPUS"/05[0-9]-* "$CORPUS"/06[0-9]-* "$CORPUS"/07[0-2]-*; do
	[ -f "$dir/case.json" ] || continue
	cid=${dir##*/}
	class=$(jq -r .status_class "$dir/case.json")
	if jq -e '.signature.secrets_pass' "$dir/case.json" >/dev/null; then
		# Rotation: either secret alone, both, and one of neither.
		jq -r '.signature.secrets_pass[]' "$dir/case.json" >pass.list
		first=$(sed -n 1p pass.list)
		second=$(sed -n 2p pass.list)
		unrelated=$(jq -r '.signature.secrets_fail[0]' "$dir/case.json")
		signature_case "$dir" "$cid:first" "$class" "$first"
		signature_case "$dir" "$cid:second" "$class" "$second"
		signature_case "$dir" "$cid:both" "$class" "$second" "$first"
		signature_case "$dir" "$cid:unrelated" 4xx "$unrelated"
	elif jq -e .signature "$dir/case.json" >/dev/null; then
		signature_case "$dir" "$cid" "$class" \
		    "$(jq -r .signature.secret "$dir/case.json")"
	elif [ -f "$dir/condition.json" ]; then
		install_flow "$dir" "$cid:rule" "--rule @'$dir/condition.json'"
		run_case "$dir" "$cid:rule" "$class" \
		    "$([ "$class" = 4xx ] && echo 403)"
		token=$(jq -r '.["$trigger"].headers["x-webhook-secret"]._eq' \
		    "$dir/condition.json")
		file=$(secret_file "$cid.header" "$token")
		install_flow "$dir" "$cid:header" \
		    "--header x-webhook-secret=@$file"
		run_case "$dir" "$cid:header" "$class" \
		    "$([ "$class" = 4xx ] && echo 403)"
		check_nomatch "$cid: no token in responses" \
		    "$(cat responses)" "$token"
	fi
done

# Every digest a verifier computed, and every secret, stays out of the
# responses and the log.
sleep 0.1
log=$(cat listen.log)
check "digests computed" test -s digests
while read -r digest; do
	check_nomatch "no digest ${digest%"${digest#????????}"} in log" \
	    "$log" "$digest"
	check_nomatch "no digest ${digest%"${digest#????????}"} in responses" \
	    "$(cat responses)" "$digest"
done <<EOF
$(sort -u digests)
EOF
for file in cred/*; do
	check_nomatch "no secret ${file#cred/} in log" "$log" "$(cat "$file")"
	check_nomatch "no secret ${file#cred/} in responses" \
	    "$(cat responses)" "$(cat "$file")"
done
