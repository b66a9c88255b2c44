#!/bin/sh
# whook-check end to end: options and usage errors, each check alone
# (header, signature, rule, jq), their order, outcomes under
# WHOOK_OUTCOMES, the fail path, and the corpus cases 070, 071, 084, 028
# turned into envelopes.
. "$(dirname "$0")/../lib.sh"

# env_line ID BODY_JSON [HEADERS_JSON]: prints one envelope.
env_line() {
	headers=${3-}
	[ -n "$headers" ] || headers='{}'
	printf '{"$trigger":{"id":"%s","method":"POST","path":"/hooks/t",' "$1"
	printf '"query":{},"headers":%s,"body":%s,"raw":"x"},"$last":null}\n' \
	    "$headers" "$2"
}

# sign_line ID SECRET RAW [STRIPE_TIMESTAMP]: prints an envelope whose
# raw body RAW is signed with SECRET as GitHub does, or as Stripe does
# when a timestamp is given.
sign_line() {
	python3 - "$@" <<'EOF'
import hashlib, hmac, json, sys
ident, secret, raw = sys.argv[1:4]
headers = {"content-type": "application/json"}
if len(sys.argv) > 4:
    ts = sys.argv[4]
    mac = hmac.new(secret.encode(), (ts + "." + raw).encode(),
                   hashlib.sha256).hexdigest()
    headers["stripe-signature"] = "t=%s,v1=%s" % (ts, mac)
else:
    mac = hmac.new(secret.encode(), raw.encode(), hashlib.sha256)
    headers["x-hub-signature-256"] = "sha256=" + mac.hexdigest()
print(json.dumps({"$trigger": {"id": ident, "method": "POST",
                  "headers": headers, "body": json.loads(raw),
                  "raw": raw}, "$last": None}))
EOF
}

# case_envelope DIR: prints the envelope of the corpus case's
# request.http: lowercased header names, decoded query, body by type.
case_envelope() {
	python3 - "$1" <<'EOF'
import json, os, sys, urllib.parse
path = sys.argv[1]
data = open(os.path.join(path, "request.http"), "rb").read()
head, _, raw = data.partition(b"\r\n\r\n")
lines = head.decode().split("\r\n")
method, target, _ = lines[0].split(" ")
headers = {}
for line in lines[1:]:
    name, _, value = line.partition(":")
    name = name.strip().lower()
    value = value.strip()
    headers[name] = headers[name] + ", " + value if name in headers else value
url = urllib.parse.urlsplit(target)
query = dict(urllib.parse.parse_qsl(url.query))
ctype = headers.get("content-type", "")
text = raw.decode()
if ctype.startswith("application/json"):
    body = json.loads(text)
elif ctype.startswith("text/"):
    body = text
else:
    body = None
print(json.dumps({"$trigger": {"id": os.path.basename(path),
                  "method": method, "path": url.path, "query": query,
                  "headers": headers, "body": body, "raw": text},
                  "$last": None}))
EOF
}

# Usage, help and version.
out=$(whook-check -h)
check_eq "help exits 0" "$?" 0
check_match "help prints usage" "$out" "usage: whook-check"
out=$(whook-check --help)
check_match "long help prints usage" "$out" "--rejected FILE"
out=$(whook-check --version)
check_match "version" "$out" "whook-check "

whook-check --bogus </dev/null >out 2>err
check_eq "unknown option exits 64" "$?" 64
check_match "unknown option named" "$(cat err)" \
    "whook-check: --bogus: unknown option"
check_match "unknown option prints usage" "$(cat err)" "usage: whook-check"
check_eq "usage not on stdout" "$(cat out)" ""

whook-check --rule </dev/null 2>err
check_eq "missing argument exits 64" "$?" 64
check_match "missing argument named" "$(cat err)" "--rule: missing argument"

whook-check </dev/null 2>err
check_eq "no check exits 64" "$?" 64
check_match "no check message" "$(cat err)" "no check given"

whook-check --rule '{"$trigger":{"body":{"a":{"_eqq":1}}}}' </dev/null 2>err
check_eq "unknown operator exits 64" "$?" 64
check_eq "unknown operator message" "$(head -n 1 err)" \
    'whook-check: rule: unknown operator "_eqq"'

whook-check --rule '{"a":{"_in":"x,y"}}' </dev/null 2>err
check_eq "bad operand exits 64" "$?" 64
check_match "bad operand message" "$(cat err)" "rule: _in takes an array"

whook-check --rule '{"a":' </dev/null 2>err
check_eq "invalid rule JSON exits 64" "$?" 64
check_match "invalid rule JSON message" "$(cat err)" "rule: invalid JSON"

whook-check --rule @"$TMP/nofile.json" </dev/null 2>err
check_eq "missing rule file exits 64" "$?" 64
check_match "missing rule file named" "$(cat err)" "nofile.json"

whook-check --jq '.body |' </dev/null 2>err
check_eq "jq syntax error exits 64" "$?" 64
check_match "jq syntax error message" "$(cat err)" "whook-check: --jq: jq: error: syntax error"

whook-check --jq true --jq false </dev/null 2>err
check_eq "jq twice exits 64" "$?" 64

whook-check --header X-Token=plain-secret-value </dev/null 2>err
check_eq "header secret on command line exits 64" "$?" 64
check_nomatch "header secret never printed" "$(cat err)" \
    "plain-secret-value"

for bad in 200 600 abc; do
	whook-check --jq true --status "$bad" </dev/null 2>err
	check_eq "status $bad rejected" "$?" 64
done
whook-check --signature github --secret env:NOPE_UNSET </dev/null 2>err
check_eq "unset secret variable exits 64" "$?" 64
whook-check --signature github </dev/null 2>err
check_eq "signature without secret exits 64" "$?" 64
SK=k whook-check --jq true --secret env:SK </dev/null 2>err
check_eq "secret without signature exits 64" "$?" 64
whook-check --signature nosuch --secret env:HOME </dev/null 2>err
check_eq "unknown scheme exits 64" "$?" 64
whook-check --jq true --tolerance -5 </dev/null 2>err
check_eq "negative tolerance exits 64" "$?" 64
WHOOK_NOW=soon whook-check --signature github --secret env:HOME \
    </dev/null 2>err
check_eq "invalid WHOOK_NOW exits 64" "$?" 64

# Header check.
printf 's3cr3t-Token-Value\n' >secret
env_line h1 '{}' '{"x-webhook-secret":"s3cr3t-Token-Value"}' >ok.ndjson
env_line h2 '{}' '{"x-webhook-secret":"s3cr3t-token-value"}' >bad.ndjson
env_line h3 '{}' '{}' >none.ndjson

out=$(whook-check --header X-Webhook-Secret=@secret <ok.ndjson 2>err)
check_eq "header match exits 0" "$?" 0
check_match "header match passes envelope" "$out" '"id":"h1"'
check_eq "header match silent" "$(cat err)" ""

out=$(whook-check --header x-webhook-secret=@secret <bad.ndjson 2>err)
check_eq "header mismatch exits 1" "$?" 1
check_eq "header mismatch drops envelope" "$out" ""
check_match "header mismatch reason" "$(cat err)" \
    "h2: rejected: header x-webhook-secret: mismatch"
check_nomatch "header value never printed" "$(cat err)" "s3cr3t"

whook-check --header x-webhook-secret=@secret <none.ndjson 2>err
check_eq "header missing exits 1" "$?" 1
check_match "header missing reason" "$(cat err)" \
    "header x-webhook-secret: missing"

out=$(SECRET_VAR=s3cr3t-Token-Value whook-check \
    --header x-webhook-secret=env:SECRET_VAR <ok.ndjson)
check_match "header secret from environment" "$out" '"id":"h1"'

out=$(WHOOK_OUTCOMES=1 whook-check --header x-webhook-secret=@secret \
    <bad.ndjson 2>/dev/null)
check_eq "outcome status 403" \
    "$(printf '%s' "$out" | jq -r '."$error".status')" 403
check_eq "outcome step" "$(printf '%s' "$out" | jq -r '."$error".step')" \
    whook-check
check_nomatch "outcome hides header value" "$out" '"reason":"s3cr3t'

out=$(WHOOK_OUTCOMES=1 whook-check --status 409 \
    --header x-webhook-secret=@secret <bad.ndjson 2>/dev/null)
check_eq "status option overrides" \
    "$(printf '%s' "$out" | jq -r '."$error".status')" 409

# Rules.
env_line r1 '{"amount":2000,"code":"2000","big":9007199254740993}' \
    >rule.ndjson
out=$(whook-check --rule '{"$trigger":{"body":{"amount":{"_eq":2000}}}}' \
    <rule.ndjson)
check_eq "rule number passes" "$?" 0
check_match "rule keeps big number exact" "$out" '"big":9007199254740993'
whook-check --rule '{"$trigger":{"body":{"amount":{"_eq":"2000"}}}}' \
    <rule.ndjson 2>err
check_eq "rule no coercion exits 1" "$?" 1
check_match "rule reason names path and operator" "$(cat err)" \
    "rule: \$trigger.body.amount: _eq failed"
whook-check --rule '{"$trigger":{"body":{"big":{"_eq":9007199254740992}}}}' \
    <rule.ndjson 2>/dev/null
check_eq "rule big neighbour differs" "$?" 1
whook-check --rule '{"$trigger":{"body":{"big":{"_gt":9007199254740992}}}}' \
    <rule.ndjson >/dev/null
check_eq "rule big ordered exactly" "$?" 0

cat >rule.json <<'EOF'
{"_or": [{"$trigger": {"body": {"code": {"_in": ["1", "2000"]}}}},
         {"$trigger": {"body": {"amount": {"_lt": 0}}}}]}
EOF
whook-check --rule @rule.json <rule.ndjson >/dev/null
check_eq "rule from file" "$?" 0
whook-check --rule @rule.json \
    --rule '{"$trigger":{"body":{"missing":{"_nnull":true}}}}' \
    <rule.ndjson 2>err >/dev/null
check_eq "every rule must hold" "$?" 1
check_match "missing field reason" "$(cat err)" "_nnull failed"

# jq.
{
	env_line j1 '{"ref":"refs/heads/main"}'
	env_line j2 '"{\"ok\":true}"'
	env_line j3 '{"ref":"refs/heads/main"}'
} >jq.ndjson
out=$(whook-check --jq '(.body | type) == "object"' <jq.ndjson 2>err)
check_eq "jq false rejects" "$?" 1
check_match "jq false reason" "$(cat err)" "j2: rejected: jq: the filter"
check_eq "jq passes two of three" "$(printf '%s\n' "$out" | wc -l)" 2
whook-check --jq '.body | fromjson' <jq.ndjson >out 2>err
check_eq "jq runtime error exits 1" "$?" 1
check_match "jq runtime error reason" "$(cat err)" "j1: rejected: jq:"
check_match "jq error keeps stream going" "$(cat out)" '"id":"j2"'
out=$(WHOOK_OUTCOMES=1 whook-check --jq '.body | fromjson' <jq.ndjson \
    2>/dev/null | jq -r 'select(."$error") | ."$error".status' | head -n 1)
check_eq "jq runtime error status 403" "$out" 403
whook-check --jq 'empty' <jq.ndjson >/dev/null 2>err
check_eq "jq no output exits 1" "$?" 1
check_match "jq no output reason" "$(cat err)" "jq: no output"
whook-check --jq 'null' <jq.ndjson >/dev/null 2>err
check_eq "jq null exits 1" "$?" 1
whook-check --jq 0 <jq.ndjson >/dev/null
check_eq "jq zero is truthy" "$?" 0
printf '$last == null and $trigger.id == "j3"\n' >filter.jq
out=$(whook-check --jq @filter.jq <jq.ndjson 2>/dev/null)
check_match "jq from file with variables" "$out" '"id":"j3"'
check_nomatch "jq from file filters" "$out" '"id":"j1"'

# Order: header first, then rule, then jq.
whook-check --header x-webhook-secret=@secret \
    --rule '{"$trigger":{"nope":{"_eq":1}}}' --jq false <bad.ndjson 2>err
check_match "header checked first" "$(cat err)" "header x-webhook-secret"
whook-check --rule '{"$trigger":{"nope":{"_eq":1}}}' --jq false \
    <bad.ndjson 2>err
check_match "rule checked before jq" "$(cat err)" "rule:"

# Signatures.
raw='{"action":"opened","n":1}'
sign_line s1 it-is-secret "$raw" >gh.ndjson
sign_line s2 other-secret "$raw" >gh-bad.ndjson
printf 'it-is-secret' >gh.key
printf 'old-secret' >old.key
out=$(whook-check --signature github --secret @gh.key <gh.ndjson)
check_eq "github signature passes" "$?" 0
check_eq "github signature envelope out" \
    "$(printf '%s\n' "$out" | jq -r '.["$trigger"].id')" s1
out=$(WHOOK_OUTCOMES=1 whook-check --signature github --secret @gh.key \
    <gh-bad.ndjson 2>err)
check_eq "github wrong secret exits 1" "$?" 1
check_eq "signature status 401" \
    "$(printf '%s' "$out" | jq -r '."$error".status')" 401
check_match "signature reason" "$(cat err)" "s2: rejected: signature:"
check_nomatch "signature reason hides secret" "$(cat err)" "it-is-secret"
whook-check --signature github --secret @old.key --secret @gh.key \
    <gh.ndjson >/dev/null
check_eq "any secret may match" "$?" 0

sign_line t1 it-is-secret "$raw" 1700000000 >stripe.ndjson
whook-check --signature stripe --secret @gh.key --now 1700000100 \
    <stripe.ndjson >/dev/null
check_eq "stripe fresh passes" "$?" 0
whook-check --signature stripe --secret @gh.key --now 1700000400 \
    <stripe.ndjson >/dev/null 2>err
check_eq "stripe stale rejected" "$?" 1
WHOOK_NOW=1700000400 whook-check --signature stripe --secret @gh.key \
    <stripe.ndjson >/dev/null 2>&1
check_eq "WHOOK_NOW sets the clock" "$?" 1
whook-check --signature stripe --secret @gh.key --now 1700000400 \
    --tolerance 1000 <stripe.ndjson >/dev/null
check_eq "tolerance widens window" "$?" 0
whook-check --signature stripe --secret @gh.key --now 1 --tolerance 0 \
    <stripe.ndjson >/dev/null
check_eq "tolerance 0 turns clock off" "$?" 0

# The man page's examples.
python3 - >push.ndjson <<'EOF'
import hashlib, hmac, json
raw = json.dumps({"ref": "refs/heads/main"})
mac = hmac.new(b"new-secret", raw.encode(), hashlib.sha256).hexdigest()
print(json.dumps({"$trigger": {"id": "p1", "headers": {
    "x-github-event": "push", "x-hub-signature-256": "sha256=" + mac},
    "body": json.loads(raw), "raw": raw}}))
EOF
GH_OLD=old-secret GH_NEW=new-secret whook-check --signature github \
    --secret env:GH_OLD --secret env:GH_NEW \
    --jq '.headers["x-github-event"] == "push" and
          .body.ref == "refs/heads/main"' <push.ndjson >/dev/null
check_eq "example github rotation" "$?" 0
{
	env_line o1 '{"total":1500}'
	env_line o2 '{"total":20}'
} >orders.ndjson
out=$(whook-check --rejected small.ndjson \
    --rule '{"$trigger": {"body": {"total": {"_gte": 1000}}}}' \
    <orders.ndjson 2>/dev/null)
check_match "example large order kept" "$out" '"id":"o1"'
check_eq "example small order filed" \
    "$(jq -r '."$trigger".id' small.ndjson)" o2

# The fail path and -v.
{
	cat ok.ndjson
	cat bad.ndjson
} >mixed.ndjson
out=$(whook-check -v --rejected rejected.ndjson \
    --header x-webhook-secret=@secret <mixed.ndjson 2>err)
check_eq "mixed input exits 1" "$?" 1
check_match "passed envelope on stdout" "$out" '"id":"h1"'
check_nomatch "rejected envelope not on stdout" "$out" '"id":"h2"'
check_match "verbose logs passed" "$(cat err)" "h1: passed"
check_eq "rejected file holds envelope" \
    "$(jq -r '."$trigger".id' rejected.ndjson)" h2
check_eq "rejected file has error" \
    "$(jq -r '."$error".reason' rejected.ndjson)" \
    "header x-webhook-secret: mismatch"
whook-check --rejected rejected.ndjson --header x-webhook-secret=@secret \
    <bad.ndjson 2>/dev/null
check_eq "rejected file appends" "$(wc -l <rejected.ndjson)" 2
WHOOK_OUTCOMES=1 whook-check --rejected outcomes.ndjson \
    --header x-webhook-secret=@secret <bad.ndjson >/dev/null 2>&1
check_eq "rejected file unused under outcomes" \
    "$(wc -c <outcomes.ndjson)" 0

# Corpus cases.
dir=$(corpus_case 070-shared-secret-header-ok)
if [ -n "$dir" ]; then
	case_envelope "$dir" >c070.ndjson
	out=$(whook-check --rule @"$dir/condition.json" <c070.ndjson)
	check_eq "corpus 070 rule passes" "$?" 0
	check_match "corpus 070 envelope out" "$out" '"lead.created"'
	whook-check --header X-Webhook-Secret=@secret <c070.ndjson >/dev/null
	check_eq "corpus 070 header passes" "$?" 0
fi
dir=$(corpus_case 071-shared-secret-header-wrong)
if [ -n "$dir" ]; then
	case_envelope "$dir" >c071.ndjson
	out=$(WHOOK_OUTCOMES=1 whook-check --rule @"$dir/condition.json" \
	    <c071.ndjson 2>err)
	check_eq "corpus 071 rule rejects" "$?" 1
	check_eq "corpus 071 status 403" \
	    "$(printf '%s' "$out" | jq -r '."$error".status')" 403
	check_nomatch "corpus 071 hides expected secret" "$out$(cat err)" \
	    "s3cr3t-Token-Value"
	check_nomatch "corpus 071 hides sent value" "$(cat err)" \
	    "s3cr3t-token-value"
	whook-check --header x-webhook-secret=@secret <c071.ndjson \
	    >/dev/null 2>&1
	check_eq "corpus 071 header rejects" "$?" 1
fi
dir=$(corpus_case 084-jq-filter-ref)
if [ -n "$dir" ]; then
	case_envelope "$dir" >c084.ndjson
	whook-check --jq @"$dir/filter.jq" <c084.ndjson >/dev/null
	check_eq "corpus 084 jq filter passes" "$?" 0
	whook-check --jq '.body.ref == "refs/heads/dev"' <c084.ndjson \
	    >/dev/null 2>&1
	check_eq "corpus 084 other ref rejects" "$?" 1
fi
dir=$(corpus_case 028-text-plain-json)
if [ -n "$dir" ]; then
	case_envelope "$dir" >c028.ndjson
	whook-check \
	    --jq '.body | fromjson | .Type == "SubscriptionConfirmation"' \
	    <c028.ndjson >/dev/null
	check_eq "corpus 028 jq over text body" "$?" 0
	whook-check --jq '.body | fromjson | .Type' <c028.ndjson >/dev/null
	check_eq "corpus 028 string output passes" "$?" 0
fi
