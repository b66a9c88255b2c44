#!/bin/sh
# whook-insert --dedupe against real sqlite3 files: a replayed envelope
# inserts nothing, per table, within a batch and across runs, and a crash
# in the middle of a stream followed by a replay stores each row once.
. "$(dirname "$0")/../lib.sh"

# envelope ID LAST: prints an envelope with that $trigger.id and $last.
envelope() {
	printf '{"$trigger":{"id":"%s"},"$last":%s}\n' "$1" "$2"
}

# stream N PREFIX: prints N envelopes with ids PREFIX0.., each row
# carrying its envelope id.
stream() {
	awk -v n="$1" -v p="$2" 'BEGIN { for (i = 0; i < n; i++)
	    printf "{\"$trigger\":{\"id\":\"%s%d\"}," \
		"\"$last\":{\"id\":\"%s%d\",\"n\":%d}}\n", p, i, p, i, i }'
}

# rowids FILE: prints the rowid of each line's $last, one per line.
rowids() {
	sed 's/.*"rowid":\([0-9a-z]*\).*/\1/' "$1"
}

# Options.
out=$(whook-insert --help)
check_match "help lists --dedupe" "$out" "--dedupe"
check_match "help lists --no-dedupe" "$out" "--no-dedupe"
whook-insert --db x.db -t WHOOK_SEEN </dev/null 2>err
check_eq "seen table as target is usage" "$?" 64
check_match "seen table as target named" "$(cat err)" "whook_seen"
whook-insert --db x.db -t whook_seen --no-dedupe </dev/null 2>/dev/null
check_eq "seen table allowed without dedupe" "$?" 0

# The same 100 envelopes twice: 100 rows, and the second run is all
# duplicates that name the rows of the first, as in the manual's replay
# example.
stream 100 a >envelopes.log
whook-insert --db rep.db -t t -c <envelopes.log >first
check_eq "first run exit" "$?" 0
check_eq "first run rows" "$(sql rep.db 'SELECT count(*) FROM t')" 100
check_eq "first run no duplicate" "$(grep -c '"duplicate"' first)" 0
whook-insert --db rep.db -t t -v <envelopes.log >second 2>err
check_eq "replay exit" "$?" 0
check_eq "replay rows" "$(sql rep.db 'SELECT count(*) FROM t')" 100
check_eq "replay lines" "$(wc -l <second)" 100
check_eq "replay all duplicate" \
    "$(grep -c '"changes":0,"duplicate":true}' second)" 100
check_eq "replay rowids recorded" "$(rowids second)" "$(rowids first)"
check_match "replay rowid of first" "$(head -n 1 second)" \
    '"$last":{"table":"t","rowid":1,"changes":0,"duplicate":true}'
check_match "replay verbose line" "$(cat err)" "a7: duplicate, not inserted"
check_eq "replay verbose lines" "$(grep -c 'duplicate, not inserted' err)" 100
check_eq "seen rows" "$(sql rep.db 'SELECT count(*), count(DISTINCT
    envelope_id), min(tbl), max(tbl) FROM whook_seen')" "100|100|t|t"
check_eq "seen row id" "$(sql rep.db "SELECT row_id FROM whook_seen
    WHERE envelope_id = 'a41'")" \
    "$(sql rep.db "SELECT rowid FROM t WHERE id = 'a41'")"
sql rep.db "SELECT at FROM whook_seen WHERE envelope_id = 'a0'" >at
check "seen time format" grep -Eq \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' at
check_match "seen without rowid" "$(sql rep.db .schema)" "WITHOUT ROWID"

# Two envelopes with identical rows and different ids are two rows.
{
	envelope b1 '{"v":1}'
	envelope b2 '{"v":1}'
} >in
whook-insert --db same.db -t t -c <in >out
check_eq "same body exit" "$?" 0
check_eq "same body two rows" "$(sql same.db 'SELECT count(*) FROM t')" 2
check_eq "same body no duplicate" "$(grep -c '"duplicate"' out)" 0

# One id into two tables is one row in each.  sqlite ignores the case of
# table names, so T2 is t2 and the id is a duplicate there.
envelope c1 '{"v":1}' >in
whook-insert --db two.db -t t1 -c <in >/dev/null
whook-insert --db two.db -t t2 -c <in >/dev/null
check_eq "two tables exit" "$?" 0
out=$(whook-insert --db two.db -t T2 <in)
check_match "table case duplicate" "$out" '"duplicate":true'
check_eq "one row in each table" "$(sql two.db 'SELECT (SELECT count(*)
    FROM t1), (SELECT count(*) FROM t2)')" "1|1"
check_eq "seen per table" "$(sql two.db "SELECT group_concat(tbl) FROM
    (SELECT tbl FROM whook_seen WHERE envelope_id = 'c1' ORDER BY tbl)")" \
    "t1,t2"

# The same id twice in one batch is one row, the second a duplicate.
{
	envelope d1 '{"v":1}'
	envelope d1 '{"v":2}'
	envelope d2 '{"v":3}'
} >in
whook-insert --db batch.db -t t -c <in >out
check_eq "batch duplicate exit" "$?" 0
check_eq "batch duplicate rows" "$(sql batch.db 'SELECT group_concat(v)
    FROM t')" "1,3"
check_match "batch duplicate marked" "$(sed -n 2p out)" \
    '"rowid":1,"changes":0,"duplicate":true'
check_eq "batch duplicate once" "$(grep -c '"duplicate"' out)" 1

# Two processes that open a new database at once both switch it to WAL:
# neither may fail for the other's switch, in twenty rounds.
stream 500 n >few
failed=0
for round in $(seq 1 20); do
	rm -f new.db new.db-wal new.db-shm
	for w in 1 2; do
		( whook-insert --db new.db -t t -c <few >/dev/null 2>>new.err
		    echo $? >new$w ) &
	done
	wait
	[ "$(cat new1)$(cat new2)" = 00 ] || failed=$((failed + 1))
done
check_eq "new database, two openers" "$failed" 0
check_nomatch "new database, no lock error" "$(cat new.err)" \
    "database is locked"

# Two processes writing the same 500 envelopes at once insert each once:
# the lookup runs inside the write transaction, which sqlite gives one
# writer at a time.
stream 500 w >rows
for w in 1 2; do
	( whook-insert --db conc.db -t t -c --batch 50 <rows >conc$w
	    echo $? >rc$w ) &
done
wait
check_eq "same ids writer 1 exit" "$(cat rc1)" 0
check_eq "same ids writer 2 exit" "$(cat rc2)" 0
check_eq "same ids concurrent rows" "$(sql conc.db 'SELECT count(*),
    count(DISTINCT id) FROM t')" "500|500"
check_eq "same ids one writer each" "$(cat conc1 conc2 |
    grep -c '"duplicate":true')" 500

# --no-dedupe inserts a replay again and records nothing; the last of
# --dedupe and --no-dedupe counts.
envelope e1 '{"v":1}' >in
whook-insert --db no.db -t t -c --no-dedupe <in >/dev/null
whook-insert --db no.db -t t --no-dedupe <in >/dev/null
check_eq "no-dedupe exit" "$?" 0
check_eq "no-dedupe inserts twice" "$(sql no.db 'SELECT count(*) FROM t')" 2
check_eq "no-dedupe records nothing" "$(sql no.db "SELECT count(*) FROM
    sqlite_master WHERE name = 'whook_seen'")" 0
whook-insert --db no.db -t t --no-dedupe --dedupe <in >/dev/null
whook-insert --db no.db -t t --no-dedupe --dedupe <in >/dev/null
check_eq "last dedupe option counts" \
    "$(sql no.db 'SELECT count(*) FROM t')" 3

# Envelopes without a string id are inserted every time.
{
	printf '%s\n' '{"$last":{"v":1}}'
	printf '%s\n' '{"$trigger":{"id":7},"$last":{"v":2}}'
	printf '%s\n' '{"$trigger":{"id":""},"$last":{"v":3}}'
	printf '%s\n' '{"$trigger":{"id":12345678901234567890},"$last":{"v":4}}'
} >in
whook-insert --db noid.db -t t -c <in >/dev/null
whook-insert --db noid.db -t t <in >/dev/null
check_eq "no id exit" "$?" 0
check_eq "no id inserted twice" "$(sql noid.db 'SELECT count(*) FROM t')" 8
check_eq "no id not recorded" "$(sql noid.db "SELECT count(*) FROM
    sqlite_master WHERE name = 'whook_seen'")" 0

# A row that fails records no id, so the corrected replay inserts it.
sql fit.db 'CREATE TABLE t (id TEXT, amount INTEGER) STRICT'
{
	envelope f1 '{"id":"f1","amount":10}'
	envelope f2 '{"id":"f2","amount":"ten"}'
} >in
whook-insert --db fit.db -t t <in >/dev/null 2>err
check_eq "failed row exit" "$?" 65
check_match "failed row reason" "$(cat err)" "cannot store TEXT value"
check_eq "failed row not recorded" "$(sql fit.db "SELECT group_concat(
    envelope_id) FROM whook_seen")" "f1"
{
	envelope f1 '{"id":"f1","amount":10}'
	envelope f2 '{"id":"f2","amount":20}'
} >in
out=$(whook-insert --db fit.db -t t <in)
check_eq "corrected replay exit" "$?" 0
check_eq "corrected replay rows" "$(sql fit.db 'SELECT group_concat(amount)
    FROM (SELECT amount FROM t ORDER BY id)')" "10,20"
check_match "corrected replay inserts" "$(printf '%s\n' "$out" | sed -n 2p)" \
    '"changes":1}'

# A failed commit undoes the ids of its batch with its rows.
sql fk.db 'CREATE TABLE p (id INTEGER PRIMARY KEY);
    CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)'
envelope k1 '{"p":7}' >in
whook-insert --db fk.db -t c <in >/dev/null 2>err
check_eq "failed commit exit" "$?" 65
check_eq "failed commit no record" "$(sql fk.db "SELECT count(*) FROM
    sqlite_master WHERE name = 'whook_seen'")" 0
sql fk.db 'INSERT INTO p VALUES (7)'
whook-insert --db fk.db -t c <in >/dev/null
check_eq "replay after failed commit" "$(sql fk.db 'SELECT count(*) FROM c')" 1

# A row that --on-conflict ignore kept out is recorded with no row id, so
# its replay is a duplicate with rowid null.
sql ign.db 'CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER)'
sql ign.db "INSERT INTO t VALUES ('k', 1)"
envelope g1 '{"id":"k","n":2}' >in
out=$(whook-insert --db ign.db -t t -o ignore <in)
check_match "ignored row result" "$out" '"rowid":null,"changes":0}'
check_eq "ignored row recorded" "$(sql ign.db "SELECT quote(row_id) FROM
    whook_seen WHERE envelope_id = 'g1'")" "NULL"
out=$(whook-insert --db ign.db -t t -o ignore <in)
check_match "ignored replay duplicate" "$out" \
    '"rowid":null,"changes":0,"duplicate":true}'

# Under WHOOK_OUTCOMES=1 each line read gives one line: a duplicate
# passes, an envelope with $error passes untouched and is not recorded,
# and a failed row gets $error.
sql out.db 'CREATE TABLE t (v INTEGER) STRICT'
err_line='{"$trigger":{"id":"h3"},"$last":{"v":3},'
err_line=$err_line'"$error":{"status":403,"step":"whook-check","reason":"no"}}'
{
	envelope h1 '{"v":1}'
	envelope h1 '{"v":1}'
	printf '%s\n' "$err_line"
	envelope h4 '{"v":"four"}'
	envelope h5 '{"v":5}'
} >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db out.db -t t <in 2>/dev/null)
check_eq "outcomes exit" "$?" 65
check_eq "outcomes one line each" "$(printf '%s\n' "$out" | wc -l)" 5
check_match "outcomes duplicate passes" "$(printf '%s\n' "$out" | sed -n 2p)" \
    '"duplicate":true'
check_eq "outcomes error untouched" "$(printf '%s\n' "$out" | sed -n 3p)" \
    "$err_line"
check_match "outcomes failed row" "$(printf '%s\n' "$out" | sed -n 4p)" \
    '"$error":{"status":422'
check_eq "outcomes rows" "$(sql out.db 'SELECT group_concat(v) FROM t')" "1,5"
check_eq "outcomes recorded" "$(sql out.db "SELECT group_concat(envelope_id)
    FROM (SELECT envelope_id FROM whook_seen ORDER BY 1)")" "h1,h5"

# kill -9 in the middle of a 20000-envelope stream, then the same stream
# again: every envelope's row is stored exactly once.  Input is always
# waiting, so whook-insert commits every 1000 rows and the kill lands in
# an open batch.  Padded rows make the stream last long enough for the
# poll to see 3000 lines well before the end.
pad=$(awk 'BEGIN { while (n++ < 500) printf "x" }')
awk -v pad="$pad" 'BEGIN { for (i = 0; i < 20000; i++)
    printf "{\"$trigger\":{\"id\":\"s%d\"}," \
	"\"$last\":{\"id\":\"s%d\",\"pad\":\"%s\"}}\n", i, i, pad }' >big
: >crash.out
# $! of a background pipeline is its last command, whook-insert, and
# cat ends at the broken pipe.
cat big | whook-insert --db crash.db -t t -c --batch 1000 >crash.out \
    2>/dev/null &
victim=$!
PIDS="$PIDS $victim"
i=0
while [ "$(wc -l <crash.out)" -lt 3000 ] && [ $i -lt 400 ]; do
	sleep 0.02
	i=$((i + 1))
done
kill -9 "$victim"
wait "$victim"
check_eq "crash killed" "$?" 137
before=$(sql crash.db 'SELECT count(*) FROM t')
echo "# rows before replay: $before"
check "crash left part" test "$before" -gt 0 -a "$before" -lt 20000
check "crash output committed" test "$(wc -l <crash.out)" -le "$before"
whook-insert --db crash.db -t t <big >replay.out
check_eq "crash replay exit" "$?" 0
check_eq "crash replay lines" "$(wc -l <replay.out)" 20000
check_eq "crash rows exactly once" "$(sql crash.db 'SELECT count(*),
    count(DISTINCT id) FROM t')" "20000|20000"
check_eq "crash replay duplicates" "$(grep -c '"duplicate":true' replay.out)" \
    "$before"
check_eq "crash seen rows" "$(sql crash.db 'SELECT count(*) FROM
    whook_seen')" 20000

# A row whose trigger fails with RAISE(FAIL), which keeps what the
# statement did, and a record that a trigger refuses are each undone
# alone: no row is committed without its record, the other rows of the
# batch are stored, and the replay stores each row once.
stream 4 f >fails.log
sql fail.db "CREATE TABLE t (id TEXT, n INTEGER); CREATE TABLE audit (n);
    CREATE TRIGGER fails AFTER INSERT ON t WHEN NEW.id = 'f1'
    BEGIN INSERT INTO audit VALUES (NEW.n); SELECT RAISE(FAIL, 'no'); END;
    CREATE TABLE whook_seen (envelope_id TEXT NOT NULL,
    tbl TEXT NOT NULL COLLATE NOCASE, row_id INTEGER, at TEXT NOT NULL,
    PRIMARY KEY (envelope_id, tbl)) WITHOUT ROWID;
    CREATE TRIGGER refuse BEFORE INSERT ON whook_seen
    WHEN NEW.envelope_id = 'f2' BEGIN SELECT RAISE(ABORT, 'refused'); END"
out=$(WHOOK_OUTCOMES=1 whook-insert --db fail.db -t t <fails.log)
check_eq "refused rows exit" "$?" 65
check_eq "refused rows two fail" \
    "$(printf '%s\n' "$out" | grep -c '"$error"')" 2
check_eq "refused rows others stored" \
    "$(sql fail.db 'SELECT id FROM t ORDER BY id')" "$(printf 'f0\nf3')"
check_eq "refused rows trigger undone" \
    "$(sql fail.db 'SELECT count(*) FROM audit')" 0
check_eq "refused rows records" "$(sql fail.db 'SELECT envelope_id FROM
    whook_seen ORDER BY 1')" "$(printf 'f0\nf3')"
sql fail.db 'DROP TRIGGER fails; DROP TRIGGER refuse'
whook-insert --db fail.db -t t <fails.log >/dev/null
check_eq "refused rows replay once" "$(sql fail.db 'SELECT count(*),
    count(DISTINCT id) FROM t')" "4|4"

# In a database without triggers, rows go in without a savepoint, and a
# record that cannot be written, here refused by a CHECK, rolls the
# whole batch back.
stream 3 g >checked.log
sql checked.db "CREATE TABLE t (id TEXT, n INTEGER);
    CREATE TABLE whook_seen (envelope_id TEXT NOT NULL
    CHECK (envelope_id <> 'g1'), tbl TEXT NOT NULL COLLATE NOCASE,
    row_id INTEGER, at TEXT NOT NULL, PRIMARY KEY (envelope_id, tbl))
    WITHOUT ROWID"
out=$(WHOOK_OUTCOMES=1 whook-insert --db checked.db -t t <checked.log)
check_eq "refused record exit" "$?" 75
check_eq "refused record every line fails" \
    "$(printf '%s\n' "$out" | grep -c '"$error"')" 3
check_match "refused record batch reason" "$out" "batch rolled back"
check_eq "refused record no row" \
    "$(sql checked.db 'SELECT count(*) FROM t')" 0
check_eq "refused record no record" \
    "$(sql checked.db 'SELECT count(*) FROM whook_seen')" 0

# A whook_seen made by hand whose key ignores a conflict drops the
# record silently; the row then fails instead of going in unrecorded.
sql handseen.db 'CREATE TABLE t1 (id); CREATE TABLE t2 (id);
    CREATE TABLE whook_seen (envelope_id TEXT NOT NULL PRIMARY KEY
    ON CONFLICT IGNORE, tbl TEXT NOT NULL, row_id INTEGER,
    at TEXT NOT NULL) WITHOUT ROWID'
envelope i1 '{"id":"a"}' >in
whook-insert --db handseen.db -t t1 <in >/dev/null
check_eq "ignored record first table" "$?" 0
out=$(WHOOK_OUTCOMES=1 whook-insert --db handseen.db -t t2 <in 2>err)
check_eq "ignored record exit" "$?" 70
check_match "ignored record reason" "$(cat err)" "the record was not written"
check_eq "ignored record no row" \
    "$(sql handseen.db 'SELECT count(*) FROM t2')" 0

if command -v mandoc >/dev/null 2>&1; then
	out=$(mandoc -Tlint -Wwarning "$ROOT/man/whook-insert.1" 2>&1)
	check_eq "man page lint" "$out" ""
fi
