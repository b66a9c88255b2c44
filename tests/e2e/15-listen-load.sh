#!/bin/sh
# whook-listen under hostile or broken input that costs time: a form
# with one key repeated 80000 times is parsed in linear time, and a
# persistent flow that exits before reading its input gives 503.
. "$(dirname "$0")/../lib.sh"

PORT=$(free_port)
spawn "$BIN/whook-listen" --listen "127.0.0.1:$PORT" >envelopes 2>listen.err
wait_port "$PORT"
python3 -c "print('&'.join('k=v' for i in range(80000)), end='')" >form
# The quadratic parser took 31 s for this body on the test machine.
got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary @form "http://127.0.0.1:$PORT/")
check_eq "80000 repeated form keys answered" "$got" 200
sleep 0.2
check_eq "every repeated value kept" \
    "$(jq '.["$trigger"].body.k | length' envelopes)" 80000
kill "$LAST_PID"
wait "$LAST_PID" 2>/dev/null

mkdir flows
printf '#!/bin/sh\nexit 64\n' >flows/gone
chmod +x flows/gone
PORT=$(free_port)
spawn "$BIN/whook-listen" --listen "127.0.0.1:$PORT" --flows flows \
    --persistent --timeout 5 2>persist.err
wait_port "$PORT"
i=0
while [ $i -lt 20 ]; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -d '{}' \
	    "http://127.0.0.1:$PORT/gone"
	i=$((i + 1))
done >codes
check_eq "flow that exits gives 503 each time" \
    "$(sort codes | uniq -c | sed 's/^ *//')" "20 503"
check_nomatch "no request timed out" "$(cat persist.err)" "no outcome"
