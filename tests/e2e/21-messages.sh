#!/bin/sh
# Messages on standard error stay one line each and never quote a value
# from the request: control characters are masked, jq's runtime errors
# lose their quoted parts, and option errors name the program.
. "$(dirname "$0")/../lib.sh"

printf '%s\n' '{"$trigger":{"id":"J1","headers":{"x-webhook-secret":"TOPSECRET-abc"}}}' >secret.ndjson
whook-check --jq '.headers["x-webhook-secret"] | tonumber' \
    <secret.ndjson >/dev/null 2>err
check_eq "jq error rejects" "$?" 1
check_nomatch "jq error hides the value" "$(cat err)" TOPSECRET
check_match "jq error keeps jq's reason" "$(cat err)" "while parsing '...'"
WHOOK_OUTCOMES=1 whook-check --jq '.headers["x-webhook-secret"] | tonumber' \
    <secret.ndjson >out 2>/dev/null
check_eq "jq error reason in \$error" \
    "$(jq -r '.["$error"].reason' out)" "jq: Invalid numeric literal at EOF at line 1, column 13 (while parsing '...')"
whook-check --jq 'error({"s": .headers["x-webhook-secret"]})' \
    <secret.ndjson >/dev/null 2>err
check_nomatch "jq error object hides the value" "$(cat err)" TOPSECRET

printf '%s\n' '{"$trigger":{"id":"T1\nwhook-listen: forged 200\u001b[31m"}}' |
    whook-check --jq false 2>err >/dev/null
check_eq "message is one line" "$(wc -l <err | tr -d ' ')" 1
check_nomatch "message has no escape byte" "$(cat err)" "$(printf '\033')"

printf '%s\n' '{"$trigger":{"id":"T1"}}' >one.ndjson
whook-map '{"a":"{{ (input) }}"}' <one.ndjson >/dev/null 2>err
check_eq "jq input rejects, no crash" "$?" 65
whook-check --jq '[inputs] | length == 0' <one.ndjson >/dev/null 2>err
check_eq "jq inputs sees no further input" "$?" 0

whook-insert --nope 2>err
check_eq "unknown option exits 64" "$?" 64
check_match "unknown option names the program" "$(head -n 1 err)" \
    "whook-insert: unrecognized option '--nope'"
whook-map -Z x <one.ndjson 2>err
check_match "invalid option names the program" "$(head -n 1 err)" \
    "whook-map: invalid option -- 'Z'"
printf 'whook-map --bad x\n' >flow
whook-run flow <one.ndjson 2>err
check_eq "flow file option error exits 64" "$?" 64
check_match "flow file option error names the stage" "$(head -n 1 err)" \
    "whook-map: unrecognized option '--bad'"
whook-run ./missing-flow </dev/null 2>err
check_eq "missing flow file message" "$(cat err)" \
    "whook-run: ./missing-flow: No such file or directory"
mkdir folder
whook-run folder </dev/null 2>err
check_eq "folder as flow file message" "$(cat err)" \
    "whook-run: folder: Is a directory"

# A stage that cannot start: under WHOOK_OUTCOMES every envelope comes
# back with $error, and the message names the stage that failed.
mkdir empty
printf '%s\n' '{"$trigger":{"id":"E1","body":{}}}' |
    CREDENTIALS_DIRECTORY=$TMP/empty WHOOK_OUTCOMES=1 \
    whook-run "$ROOT/flows.d/transactions" >out 2>err
check_eq "stage not started exits 64" "$?" 64
check_eq "stage not started sets \$error" \
    "$(jq -r '.["$error"].status' out)" 500
check_match "stage not started names the stage" "$(head -n 1 err)" \
    "whook-check: --header x-webhook-secret:"
check_match "stage not started names the envelope" "$(tail -n 1 err)" \
    "whook-check: E1: not started"
check_eq "unreadable secret has no usage text" \
    "$(grep -c '^usage:' err)" 0

# Each option error names its option.
whook-insert -b 0 </dev/null 2>err
check_match "--batch error named" "$(head -n 1 err)" \
    'whook-insert: --batch: invalid count "0"'
whook-insert --busy-timeout -5 </dev/null 2>err
check_match "--busy-timeout error named" "$(head -n 1 err)" \
    'whook-insert: --busy-timeout: invalid time in ms "-5"'
whook-listen --timeout 0 2>err
check_match "--timeout error named" "$(head -n 1 err)" \
    "whook-listen: --timeout: invalid timeout (1 to 86400 seconds): 0"
whook-listen --read-timeout x 2>err
check_match "--read-timeout error named" "$(head -n 1 err)" \
    "whook-listen: --read-timeout: invalid timeout"
whook-check --rejected "$TMP/none/r" </dev/null 2>err
check_eq "--rejected error exit" "$?" 73
check_match "--rejected error named" "$(head -n 1 err)" \
    "whook-check: --rejected $TMP/none/r: No such file or directory"
