#!/bin/sh
# whook-send against a python3 http.server on 127.0.0.1 that records each
# request (method, path, headers, body bytes) and answers with the status
# that the path names (/status/NNN), or after a delay (/sleep/SECONDS).
# The server exits by itself after 120 s.
. "$(dirname "$0")/../lib.sh"

REC=$TMP/rec
mkdir "$REC"
cat >"$TMP/server.py" <<'EOF'
import http.server, os, sys, threading, time

port, out = int(sys.argv[1]), sys.argv[2]


class Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        base = os.path.join(out, "last")
        with open(base + ".headers", "w") as f:
            for name, value in self.headers.items():
                f.write("%s: %s\n" % (name, value))
        with open(base + ".body", "wb") as f:
            f.write(body)
        with open(base + ".path", "w") as f:
            f.write(self.path)
        # Written last: its presence says the request is recorded.
        with open(base + ".method", "w") as f:
            f.write(self.command)
        parts = self.path.split("?")[0].split("/")
        status = 200
        if len(parts) > 2 and parts[1] == "status":
            status = int(parts[2])
        if len(parts) > 2 and parts[1] == "sleep":
            time.sleep(float(parts[2]))
        reply = b'{"received":%d}' % len(body)
        self.send_response(status)
        if status >= 300 and status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=cookie-value-1")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = answer

    def log_message(self, *args):
        pass


threading.Timer(120, lambda: os._exit(0)).start()
http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder).serve_forever()
EOF
PORT=$(free_port)
spawn python3 "$TMP/server.py" "$PORT" "$REC"
if ! wait_port "$PORT"; then
	fail "send server starts" "nothing listens on 127.0.0.1:$PORT"
	exit 1
fi
URL=http://127.0.0.1:$PORT

# run ARGS...: runs whook-send, keeps stdout, stderr and the exit status.
run() {
	rm -f "$REC"/last.*
	whook-send "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	out=$(cat "$TMP/out")
	err=$(cat "$TMP/err")
}

# got_header NAME: prints the value of the last request's header NAME,
# matched in any case.
got_header() {
	sed -n "s/^$1: //Ip" "$REC/last.headers" 2>/dev/null
}

got() {
	cat "$REC/last.$1" 2>/dev/null
}

# Items become a JSON object body, posted with JSON headers.
run "$URL/hooks/stripe" id=ch_2 amount:=1500 currency=eur customer=cus_2
check_eq "items exit status" "$rc" 0
check_eq "items body" "$(got body)" \
    '{"id":"ch_2","amount":1500,"currency":"eur","customer":"cus_2"}'
check_eq "items method" "$(got method)" POST
check_eq "items path" "$(got path)" /hooks/stripe
check_eq "items content type" "$(got_header Content-Type)" application/json
check_eq "items accept" "$(got_header Accept)" application/json
check_eq "items user agent" "$(got_header User-Agent)" "whook-send/0.1.0"
check_eq "status line" "$err" "HTTP/1.1 200 OK"
check_eq "response body on stdout" "$out" '{"received":63}'

# Big integers keep every digit, inline and from a file.
cat >"$TMP/order.json" <<'EOF'
{"order": 7301234567890123456, "neg": -9223372036854775809}
EOF
run "$URL/" id:=12345678901234567890 order:=@"$TMP/order.json"
check_eq "big integers exact" "$(got body)" \
    '{"id":12345678901234567890,"order":{"order":7301234567890123456,"neg":-9223372036854775809}}'

# Strings from files, escaped separators, raw JSON of every kind.
printf 'line one\nline "two"\n' >"$TMP/note.txt"
run "$URL/" note=@"$TMP/note.txt" 'a\=b=c' 'd\:e=f' 'back\\slash=g' \
    'list:=[1,"x",null]' 'flag:=true' 'at=\@home'
check_eq "field forms" "$(got body)" \
    '{"note":"line one\nline \"two\"\n","a=b":"c","d:e":"f","back\\slash":"g","list":[1,"x",null],"flag":true,"at":"@home"}'

# Query items are percent-encoded and appended; no body means GET.
run "$URL/search?page=2" 'q==a b&c' 'empty=='
check_eq "get without body" "$(got method)" GET
check_eq "query encoded" "$(got path)" "/search?page=2&q=a%20b%26c&empty="
check_eq "get body empty" "$(got body)" ""
check_eq "get accept" "$(got_header Accept)" "*/*"

# Headers: items, -H, an empty value, a value read from a file.
printf 'file-secret-1\n' >"$TMP/hdr"
run -H 'X-One: 1' -H "X-From-File: @$TMP/hdr" "$URL/" 'X-Two:2' \
    'X-Empty:' "X-Item-File:@$TMP/hdr" 'X-Literal:\@x'
check_eq "header from -H" "$(got_header X-One)" 1
check_eq "header item" "$(got_header X-Two)" 2
check_eq "header empty value" "$(grep -c '^X-Empty: $' "$REC/last.headers")" 1
check_eq "-H value from file" "$(got_header X-From-File)" file-secret-1
check_eq "item value from file" "$(got_header X-Item-File)" file-secret-1
check_eq "escaped at sign" "$(got_header X-Literal)" "@x"
check_eq "user content type" "$(got_header Content-Type)" ""

# -d sends the exact bytes: CR LF, a NUL, invalid UTF-8, no final newline.
printf '{"a":1}\r\n\000\377tail' >"$TMP/raw"
run -d @"$TMP/raw" "$URL/raw"
check "-d @FILE bytes unchanged" cmp -s "$TMP/raw" "$REC/last.body"
check_eq "-d default content type" "$(got_header Content-Type)" \
    application/json
check_eq "-d posts" "$(got method)" POST
rm -f "$REC"/last.*
whook-send -q -d @- -H 'Content-Type: text/plain' "$URL/" <"$TMP/raw" \
    >"$TMP/out" 2>"$TMP/err"
check "-d @- bytes unchanged" cmp -s "$TMP/raw" "$REC/last.body"
check_eq "-H content type wins" "$(got_header Content-Type)" text/plain
check_eq "quiet prints no status" "$(cat "$TMP/err")" ""
head -c 2100000 /dev/zero | tr '\0' x >"$TMP/big"
run -q -d @"$TMP/big" "$URL/big"
check "-d large body unchanged" cmp -s "$TMP/big" "$REC/last.body"
check_eq "no expect header" "$(got_header Expect)" ""
run -d '{"n": 1.50}' -X PUT "$URL/put"
check_eq "-d literal" "$(got body)" '{"n": 1.50}'
check_eq "-X method" "$(got method)" PUT
run -X HEAD "$URL/head"
check_eq "-X HEAD" "$(got method):$rc" HEAD:0
run -d '' "$URL/empty"
check_eq "-d empty posts" "$(got method):$(got_header Content-Length)" POST:0

# Exit status by response class.
for pair in 200:0 201:0 204:0 302:76 401:1 403:1 404:65 422:65 429:75 \
    500:70 501:70 502:75 503:75; do
	run -q "$URL/status/${pair%%:*}" x=1
	check_eq "status ${pair%%:*} exits ${pair##*:}" "$rc" "${pair##*:}"
done
run "$URL/status/404"
check_eq "404 status line" "$err" "HTTP/1.1 404 Not Found"

# No server, a time-out, a bad URL.
CLOSED=$(free_port)
run "http://127.0.0.1:$CLOSED/x" a=1
check_eq "refused exits 69" "$rc" 69
check_eq "refused message" "$err" \
    "whook-send: http://127.0.0.1:$CLOSED/x: Connection refused"
run --timeout 0.5 "$URL/sleep/3"
check_eq "timeout exits 75" "$rc" 75
check_match "timeout message" "$err" "timed out"
run 'http://exa mple/'
check_eq "bad URL exits 64" "$rc" 64
run ftp://127.0.0.1/
check_eq "ftp URL exits 64" "$rc" 64
run "http://user:pw-9@127.0.0.1:$CLOSED/"
check_nomatch "password not in message" "$err" "pw-9"

# Usage errors.
run "$URL/" notanitem
check_eq "unknown item exits 64" "$rc" 64
check_match "unknown item named" "$err" '"notanitem": not a request item'
check_eq "unknown item sends nothing" "$(got method)" ""
run "$URL/" 'n:=nope'
check_eq "invalid json item exits 64" "$rc" 64
run -d x "$URL/" a=1
check_eq "-d with fields exits 64" "$rc" 64
run "$URL/" 'Bad Name:x'
check_eq "bad header name exits 64" "$rc" 64
run "$URL/" "X-Key:@$TMP/missing"
check_eq "missing header file exits 66" "$rc" 66
run --sign github "$URL/"
check_eq "sign without secret exits 64" "$rc" 64
run --sign github --secret literal "$URL/"
check_eq "literal secret exits 64" "$rc" 64
run --timeout soon "$URL/"
check_eq "bad timeout exits 64" "$rc" 64
run --bogus "$URL/"
check_eq "unknown option exits 64" "$rc" 64
check_match "unknown option usage" "$err" "usage: whook-send"
run
check_eq "missing URL exits 64" "$rc" 64
run -h
check_eq "help exits 0" "$rc" 0
check_match "help on stdout" "$out" "usage: whook-send"
run --version
check_eq "version" "$out" "whook-send 0.1.0"

# -v shows headers both ways but no secret value.
printf 'sk_file_value_7\n' >"$TMP/token"
WHOOK_TEST_SECRET=env-secret-value-8
export WHOOK_TEST_SECRET
run -v "$URL/v" "X-Custom:@$TMP/token" 'X-Webhook-Secret:lit-secret-9' \
    'Authorization:Bearer tok-10' 'X-Plain:visible-11' a=1 \
    --sign github --secret env:WHOOK_TEST_SECRET
check_eq "verbose exits 0" "$rc" 0
check_match "verbose request line" "$err" "> POST /v HTTP/1.1"
check_match "verbose sent header" "$err" "> X-Plain: visible-11"
check_match "verbose received header" "$err" "< Content-Type: application/json"
check_match "verbose masks file header" "$err" "> X-Custom: ***"
check_nomatch "verbose hides file value" "$err" sk_file_value_7
check_nomatch "verbose hides secret header" "$err" lit-secret-9
check_nomatch "verbose hides authorization" "$err" tok-10
check_nomatch "verbose hides env secret" "$err" env-secret-value-8
check_nomatch "verbose hides signature" "$err" \
    "$(got_header X-Hub-Signature-256 | cut -c8-)"
check_nomatch "verbose hides set-cookie" "$err" cookie-value-1
check_eq "file header still sent" "$(got_header X-Custom)" sk_file_value_7

# Signatures over the exact bytes sent: GitHub's published example.
printf "It's a Secret to Everybody\n" >"$TMP/gh.secret"
run -q -d 'Hello, World!' --sign github --secret @"$TMP/gh.secret" "$URL/gh"
check_eq "github signature" "$(got_header X-Hub-Signature-256)" \
    sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17

# The Standard Webhooks published example: id and timestamp as given.
printf 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' >"$TMP/sw.secret"
run -q -d '{"test": 2432232314}' --sign standard-webhooks \
    --secret @"$TMP/sw.secret" --timestamp 1614265330 \
    --webhook-id msg_p5jXN8AQM9LWM0D4loKWxJek "$URL/sw"
check_eq "standard-webhooks exit status" "$rc" 0
check_eq "standard-webhooks id" "$(got_header Webhook-Id)" \
    msg_p5jXN8AQM9LWM0D4loKWxJek
check_eq "standard-webhooks timestamp" "$(got_header Webhook-Timestamp)" \
    1614265330
check_eq "standard-webhooks signature" "$(got_header Webhook-Signature)" \
    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
run -q --sign standard-webhooks --secret @"$TMP/sw.secret" "$URL/sw" a=1
check "standard-webhooks id generated" test -n "$(got_header Webhook-Id)"
check_match "standard-webhooks signed now" "$(got_header Webhook-Timestamp)" \
    "$(date +%s | cut -c1-6)"
run -q --sign standard-webhooks --secret @"$TMP/gh.secret" "$URL/sw" a=1
check_eq "unusable secret exits 64" "$rc" 64
check_eq "unusable secret sends nothing" "$(got method)" ""

# Stripe's signature over a corpus body matches the one recorded there.
case_dir=$(corpus_case 055-stripe-valid)
if [ -n "$case_dir" ]; then
	python3 - "$case_dir/request.http" "$TMP/stripe.body" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(data.split(b"\r\n\r\n", 1)[1])
EOF
	want=$(sed -n 's/^Stripe-Signature: t=[0-9]*,\(v1=[0-9a-f]*\).*/\1/p' \
	    "$case_dir/request.http" | tr -d '\r')
	printf 'whsec_test_Zm9vYmFyYmF6cXV4' >"$TMP/stripe.secret"
	run -q -d @"$TMP/stripe.body" --sign stripe \
	    --secret @"$TMP/stripe.secret" --timestamp 1700000000 "$URL/st"
	check_eq "stripe corpus signature" "$(got_header Stripe-Signature)" \
	    "t=1700000000,$want"
fi
