#!/bin/sh
# whook-insert against real sqlite3 files, read back with the sqlite3
# command-line shell: types, big integers, NUL bytes, conflicts, rows that
# do not fit, quoting, unavailable databases, batches, concurrent writers
# and the WHOOK_OUTCOMES contract.
. "$(dirname "$0")/../lib.sh"

# envelope ID LAST: prints an envelope with that $trigger.id and $last.
envelope() {
	printf '{"$trigger":{"id":"%s"},"$last":%s}\n' "$1" "$2"
}

# The pipeline of the manual's first example.
if [ -x "$BIN/whook-map" ]; then
	printf '%s\n' '{"$trigger":{"id":"m1","body":{"id":"ch_7","amount":150}}}' |
	    whook-map '{"id": "{{$trigger.body.id}}",
	    "amount": "{{$trigger.body.amount}}"}' |
	    whook-insert --db map.db --table transactions --create --key id \
	    >/dev/null
	check_eq "map pipeline exit" "$?" 0
	check_eq "map pipeline row" "$(sql map.db 'SELECT id, typeof(amount),
	    amount FROM transactions')" "ch_7|integer|150"
fi

# Options, help and misuse.
out=$(whook-insert --help)
check_eq "help exits 0" "$?" 0
check_match "help lists --on-conflict" "$out" "--on-conflict"
check_match "version" "$(whook-insert --version)" "whook-insert "
whook-insert --table t </dev/null 2>err
check_eq "missing --db is usage" "$?" 64
check_match "missing --db named" "$(cat err)" "missing --db"
check_match "misuse prints usage" "$(cat err)" "usage: whook-insert"
whook-insert --db x.db </dev/null 2>/dev/null
check_eq "missing --table is usage" "$?" 64
whook-insert --db x.db -t t -o merge </dev/null 2>err
check_eq "bad --on-conflict is usage" "$?" 64
check_match "bad --on-conflict named" "$(cat err)" '"merge"'
whook-insert --db x.db -t t -o update </dev/null 2>err
check_eq "update without key is usage" "$?" 64
whook-insert --db x.db -t t --batch 0 </dev/null 2>/dev/null
check_eq "batch 0 is usage" "$?" 64
whook-insert --db x.db -t t --busy-timeout -1 </dev/null 2>/dev/null
check_eq "negative busy timeout is usage" "$?" 64
whook-insert --db x.db -t t -k 'a,,b' </dev/null 2>/dev/null
check_eq "empty key column is usage" "$?" 64
whook-insert --db 'postgres://u@127.0.0.1/db' -t t </dev/null 2>/dev/null
check_eq "postgres uri is usage" "$?" 64
check "no database without input" test ! -e x.db

# The transactions row: integers stay INTEGER, $last names the row.
envelope e1 '{"id":"ch_1","amount":2000,"currency":"usd","customer_id":"cus_9"}' \
    >in
out=$(whook-insert --db tx.db --table transactions --create --key id <in)
check_eq "transactions exit" "$?" 0
check_match "transactions last" "$out" \
    '"$last":{"table":"transactions","rowid":1,"changes":1}'
check_eq "amount is integer" \
    "$(sql tx.db 'SELECT typeof(amount), amount FROM transactions')" \
    "integer|2000"
check_eq "row stored" "$(sql tx.db 'SELECT id, currency, customer_id
    FROM transactions')" "ch_1|usd|cus_9"
check_match "strict table" "$(sql tx.db .schema)" ") STRICT"
check_match "key is primary" "$(sql tx.db .schema)" 'PRIMARY KEY ("id")'
check_eq "wal mode" "$(sql tx.db 'PRAGMA journal_mode')" "wal"

# Types of the other values, and --create's column types.
envelope e2 '{"f":1.5,"t":true,"no":false,"n":null,"o":{"a":[1,"x"]},"s":"é"}' \
    >in
whook-insert --db types.db --table v --create <in >/dev/null
check_eq "types exit" "$?" 0
check_eq "stored types" "$(sql types.db 'SELECT typeof(f), typeof(t),
    typeof(no), typeof(n), typeof(o), typeof(s) FROM v')" \
    "real|integer|integer|null|text|text"
check_eq "stored values" "$(sql types.db 'SELECT f, t, no, o, s FROM v')" \
    '1.5|1|0|{"a":[1,"x"]}|é'
check_eq "column types" "$(sql types.db "SELECT group_concat(type, ',')
    FROM (SELECT type FROM pragma_table_info('v') ORDER BY cid)")" \
    "REAL,INTEGER,INTEGER,ANY,ANY,TEXT"

# Integers beyond 2^53 keep every digit: INTEGER within int64, else TEXT.
envelope e3 '{"id":9007199254740993,"max":9223372036854775807,"over":12345678901234567890,"neg":-9223372036854775809}' \
    >in
whook-insert --db big.db --table b --create <in >/dev/null
check_eq "bignum exit" "$?" 0
check_eq "bignum exact" "$(sql big.db 'SELECT typeof(id), id FROM b')" \
    "integer|9007199254740993"
check_eq "int64 max" "$(sql big.db 'SELECT typeof(max), max FROM b')" \
    "integer|9223372036854775807"
check_eq "beyond int64 as text" "$(sql big.db 'SELECT typeof(over), over,
    neg FROM b')" "text|12345678901234567890|-9223372036854775809"

# Request bodies of the corpus: an escaped NUL and big integers.
case035=$(corpus_case 035-json-unicode-escapes-nul)
if [ -n "$case035" ]; then
	body=$(sed '1,/^\r$/d' "$case035/request.http")
	printf '{"$trigger":{"id":"c035","body":%s}}\n' "$body" >in
	whook-insert --db c035.db -t body -c -f '$trigger.body' <in >/dev/null
	check_eq "corpus 035 exit" "$?" 0
	check_eq "nul kept with length 3" "$(sql c035.db 'SELECT hex(nul),
	    length(CAST(nul AS BLOB)) FROM body')" "610062|3"
	check_eq "unicode escapes stored" "$(sql c035.db 'SELECT e, hex(emoji)
	    FROM body')" "café|F09F9880"
fi
case033=$(corpus_case 033-json-bigint)
if [ -n "$case033" ]; then
	body=$(sed '1,/^\r$/d' "$case033/request.http")
	printf '{"$trigger":{"id":"c033","body":%s}}\n' "$body" >in
	whook-insert --db c033.db -t body -c -f '$trigger.body' <in >/dev/null
	check_eq "corpus 033 exit" "$?" 0
	check_eq "corpus 033 digits" "$(sql c033.db 'SELECT id, amount, huge,
	    neg FROM body')" "9007199254740993|12345678901234567890|123456789012345678901234567890|-9223372036854775809"
	check_eq "corpus 033 types" "$(sql c033.db 'SELECT typeof(id),
	    typeof(amount), typeof(price) FROM body')" "integer|text|real"
fi

# Conflicts on the key, each from an envelope of its own id, which
# --dedupe would otherwise take for a replay.
sql c.db 'CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT)'
sql c.db "INSERT INTO t VALUES ('k', 1, 'first')"
envelope f1 '{"id":"k","n":2}' >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db c.db -t t <in 2>err)
check_eq "conflict fail exit" "$?" 65
check_match "conflict fail 409" "$out" '"status":409'
check_match "conflict fail reason" "$out" "UNIQUE constraint failed: t.id"
check_match "conflict fail logged" "$(cat err)" "f1: UNIQUE constraint"
check_eq "conflict fail keeps row" "$(sql c.db 'SELECT n FROM t')" 1
envelope f2 '{"id":"k","n":2}' >in
out=$(whook-insert --db c.db -t t -o ignore <in)
check_eq "conflict ignore exit" "$?" 0
check_match "conflict ignore changes 0" "$out" '"rowid":null,"changes":0'
check_eq "conflict ignore keeps row" "$(sql c.db 'SELECT n FROM t')" 1
sql ck.db 'CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL
    CHECK (n > 0))'
{
	envelope k1 '{"id":"a","n":-1}'
	envelope k2 '{"id":"b","n":null}'
} >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db ck.db -t t -o ignore <in)
check_eq "ignore still checks exit" "$?" 65
check_match "ignore still checks CHECK" "$out" "CHECK constraint failed"
check_match "ignore still checks NOT NULL" "$out" "NOT NULL constraint failed"
check_eq "ignore still checks no row" "$(sql ck.db 'SELECT count(*) FROM t')" 0
WHOOK_OUTCOMES=1 whook-insert --db ck.db -t t -o ignore <in >out
check_eq "ignore still checks replay not duplicate" \
    "$(grep -c '"duplicate"' out)" 0
envelope f3 '{"id":"k","n":2}' >in
out=$(whook-insert --db c.db -t t -o update -k id <in)
check_eq "conflict update exit" "$?" 0
check_match "conflict update rowid" "$out" '"rowid":1,"changes":1'
check_eq "conflict update sets given columns" \
    "$(sql c.db 'SELECT n, note FROM t')" "2|first"
envelope f4 '{"id":"k","n":3}' >in
out=$(whook-insert --db c.db -t t -o replace <in)
check_eq "conflict replace exit" "$?" 0
check_eq "conflict replace new row" "$(sql c.db 'SELECT count(*), n,
    quote(note) FROM t')" "1|3|NULL"
check_match "conflict replace new rowid" "$out" \
    "\"rowid\":$(sql c.db 'SELECT rowid FROM t'),\"changes\":1"

# The rowid in $last: an INTEGER PRIMARY KEY is the rowid, and a WITHOUT
# ROWID table has none.
sql r.db 'CREATE TABLE p (id INTEGER PRIMARY KEY, n INTEGER);
    CREATE TABLE w (id TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID'
envelope r1 '{"id":42,"n":1}' >in
out=$(whook-insert --db r.db -t p <in)
check_match "integer key rowid" "$out" '"rowid":42,"changes":1'
envelope r4 '{"id":9223372036854775807,"n":1}' >in
out=$(whook-insert --db r.db -t p <in)
check_match "rowid beyond 2^53 exact" "$out" \
    '"rowid":9223372036854775807,"changes":1'
envelope r2 '{"id":"a","n":1}' >in
out=$(whook-insert --db r.db -t w <in)
check_eq "without rowid exit" "$?" 0
check_match "without rowid null" "$out" '"rowid":null,"changes":1'
envelope r3 '{"id":"a","n":2}' >in
out=$(whook-insert --db r.db -t w -o update -k id <in)
check_match "without rowid update" "$out" '"rowid":null,"changes":1'
check_eq "without rowid rows" "$(sql r.db 'SELECT id, n FROM w')" "a|2"

# Rows that do not fit name the column, and the rest of the batch is
# stored.
sql fit.db 'CREATE TABLE t (id INTEGER, amount INTEGER NOT NULL,
    qty INTEGER CHECK (qty > 0)) STRICT'
{
	envelope g1 '{"id":1,"amount":10,"qty":1}'
	envelope g2 '{"id":2,"amount":"ten","qty":1}'
	envelope g3 '{"id":3,"amount":null,"qty":1}'
	envelope g4 '{"id":4,"amount":10,"qty":0}'
	envelope g5 '{"id":5,"amount":10,"colour":"red"}'
	envelope g6 '{"id":6,"amount":10,"qty":2}'
} >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db fit.db -t t <in 2>err)
check_eq "misfit exit" "$?" 65
check_match "type mismatch names column" "$out" \
    "cannot store TEXT value in INTEGER column t.amount"
check_match "not null names column" "$out" \
    "NOT NULL constraint failed: t.amount"
check_match "check constraint fails" "$out" "CHECK constraint failed"
check_match "missing column named" "$out" "has no column named colour"
check_eq "misfits are 422" "$(printf '%s\n' "$out" | grep -c '"status":422')" 4
check_eq "one line per envelope" "$(printf '%s\n' "$out" | wc -l)" 6
check_eq "batch keeps good rows" "$(sql fit.db 'SELECT group_concat(id)
    FROM t')" "1,6"
out=$(whook-insert --db fit.db -t t <in 2>/dev/null)
check_eq "misfits dropped without outcomes" "$(printf '%s\n' "$out" |
    grep -c '"$last":{"table"')" 2

# A generated column that fails on a row's value fails that envelope
# with 422, in a table with a trigger (savepoints) or without.  A table
# dropped under a running process is a schema error: 500.
for trig in "" "CREATE TRIGGER tg AFTER INSERT ON t BEGIN SELECT 1; END;"; do
	rm -f gen.db
	sql gen.db "CREATE TABLE t (a TEXT, x GENERATED ALWAYS AS
	    (json_extract(a, '\$.x')) STORED); $trig"
	{
		envelope e1 '{"a":"{\"x\":1}"}'
		envelope e2 '{"a":"{bad"}'
		envelope e3 '{"a":"{\"x\":3}"}'
	} >in
	out=$(WHOOK_OUTCOMES=1 whook-insert --db gen.db -t t <in 2>err)
	check_eq "generated column${trig:+ with trigger} exit" "$?" 65
	check_match "generated column${trig:+ with trigger} 422" "$out" \
	    '"status":422,"step":"whook-insert","reason":"malformed JSON"'
	check_eq "generated column${trig:+ with trigger} rows" \
	    "$(sql gen.db 'SELECT group_concat(x) FROM t')" "1,3"
done
rm -f gen.db
sql gen.db 'CREATE TABLE t (a TEXT)'
envelope e1 '{"a":"one"}' >in1
envelope e2 '{"a":"two"}' >in2
mkfifo gen.fifo
WHOOK_OUTCOMES=1 timeout 20 whook-insert --db gen.db -t t <gen.fifo \
    >gen.out 2>/dev/null &
inserter=$!
exec 7>gen.fifo
cat in1 >&7
for i in 1 2 3 4 5 6 7 8 9 10; do
	[ -s gen.out ] && break
	sleep 0.2
done
sql gen.db 'DROP TABLE t'
cat in2 >&7
exec 7>&-
wait "$inserter"
check_eq "dropped table exit" "$?" 70
check_match "dropped table 500" "$(tail -n 1 gen.out)" \
    '"status":500,"step":"whook-insert","reason":"no such table: t"'

# An empty object is a row of default values, or no table to create.
sql def.db 'CREATE TABLE d (x INTEGER DEFAULT 5)'
envelope d1 '{}' >in
whook-insert --db def.db -t d -c <in >/dev/null
check_eq "empty object exit" "$?" 0
check_eq "empty object defaults" "$(sql def.db 'SELECT x FROM d')" 5
out=$(WHOOK_OUTCOMES=1 whook-insert --db def.db -t new -c <in 2>/dev/null)
check_match "empty object creates nothing" "$out" \
    "cannot create table new from an empty object"

# A missing table without --create is an error naming it.
envelope h1 '{"a":1}' >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db fit.db -t nosuch <in 2>err)
check_eq "missing table exit" "$?" 70
check_match "missing table named" "$(cat err)" "table nosuch not found"
check_match "missing table 500" "$out" '"status":500'

# SQL in values and in column names is stored as it is.
envelope q1 '{"v; DROP TABLE x; --":"x\"); DROP TABLE x; --","a\"b":"'"'"'; DELETE FROM x"}' \
    >in
sql q.db 'CREATE TABLE x (keep INTEGER)'
whook-insert --db q.db -t 'we"ird' --create <in >/dev/null
check_eq "sql text exit" "$?" 0
check_eq "sql value literal" "$(sql q.db 'SELECT "v; DROP TABLE x; --"
    FROM "we""ird"')" 'x"); DROP TABLE x; --'
check_eq "quote in column name" "$(sql q.db 'SELECT "a""b" FROM "we""ird"')" \
    "'; DELETE FROM x"
check_eq "other table untouched" "$(sql q.db "SELECT count(*) FROM
    sqlite_master WHERE name = 'x'")" 1

# A database that cannot be written is a temporary failure: 75 and 503.
envelope u1 '{"a":1}' >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db "$TMP/no/such/dir/u.db" -t u -c \
    <in 2>err)
check_eq "unopenable exit 75" "$?" 75
check_match "unopenable 503" "$out" '"status":503'
check_match "unopenable reason" "$(cat err)" "unable to open database"
sql ro.db 'PRAGMA journal_mode=WAL; CREATE TABLE u (a INTEGER)' >/dev/null
out=$(WHOOK_OUTCOMES=1 whook-insert --db "file:$TMP/ro.db?mode=ro" -t u \
    <in 2>err)
check_eq "read-only exit 75" "$?" 75
check_match "read-only 503" "$out" '"status":503'
check_match "read-only reason" "$(cat err)" "readonly database"

# A lock held past --busy-timeout is a temporary failure too.
sql lock.db 'CREATE TABLE l (a INTEGER)'
spawn python3 -c 'import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(3)
db.execute("ROLLBACK")' lock.db locked
i=0
while [ ! -e locked ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
out=$(WHOOK_OUTCOMES=1 whook-insert --db lock.db -t l --busy-timeout 200 \
    <in 2>err)
check_eq "busy exit 75" "$?" 75
check_match "busy reason" "$(cat err)" "database is locked"
wait "$LAST_PID"

# A commit that fails (a deferred foreign key) fails the whole batch.
sql fk.db 'CREATE TABLE p (id INTEGER PRIMARY KEY);
    CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)'
{
	envelope k1 '{"p":7}'
	envelope k2 '{"p":8}'
} >in
out=$(WHOOK_OUTCOMES=1 whook-insert --db fk.db -t c <in 2>err)
check_eq "failed commit exit" "$?" 65
check_eq "failed commit fails each" "$(printf '%s\n' "$out" |
    grep -c 'commit: FOREIGN KEY constraint failed')" 2
check_eq "failed commit stores none" "$(sql fk.db 'SELECT count(*) FROM c')" 0

# Under WHOOK_OUTCOMES an envelope with $error passes untouched.
line='{"$trigger":{"id":"x1"},"$last":{"a":1},"$error":{"status":403,"step":"whook-check","reason":"no"}}'
out=$(printf '%s\n' "$line" | WHOOK_OUTCOMES=1 whook-insert --db err.db \
    -t e --create)
check_eq "error envelope exit" "$?" 0
check_eq "error envelope untouched" "$out" "$line"
check "error envelope not stored" test ! -e err.db

# --from and --as.
printf '%s\n' '{"$trigger":{"id":"o1"},"$last":null,"order":{"id":5}}' >in
out=$(whook-insert --db from.db -t o -c -f order -a stored -v <in 2>err)
check_eq "from key exit" "$?" 0
check_eq "from key row" "$(sql from.db 'SELECT id FROM o')" 5
check_match "as key" "$out" '"stored":{"table":"o","rowid":1,"changes":1}'
check_match "verbose line" "$(cat err)" "o1: o: rowid 1, changes 1"
printf '%s\n' '{"$trigger":{"id":"p1","body":{"id":"b1","n":2}}}' |
    whook-insert -d hooks.db -t body -c -f '$trigger.body' >/dev/null
check_eq "from path exit" "$?" 0
check_eq "from path row" "$(sql hooks.db 'SELECT id, n FROM body')" "b1|2"
out=$(whook-insert --db from.db -t o -f nothere <in 2>err)
check_eq "from missing exit" "$?" 65
check_match "from missing reason" "$(cat err)" "nothere: missing"

# Four processes writing 500 rows each into one new file all succeed.
i=0
while [ $i -lt 500 ]; do
	echo '{"$trigger":{"id":"w'$i'"},"$last":{"n":'$i',"who":"W"}}'
	i=$((i + 1))
done >rows
for w in 1 2 3 4; do
	sed "s/\"W\"/\"$w\"/; s/\"w/\"w$w-/" rows >rows$w
	( whook-insert --db conc.db -t c -c --batch 50 <rows$w >out$w 2>err$w
	    echo $? >rc$w ) &
done
wait
for w in 1 2 3 4; do
	check_eq "writer $w exit" "$(cat rc$w)" 0
	check_eq "writer $w lines" "$(wc -l <out$w)" 500
done
check_eq "concurrent rows" "$(sql conc.db 'SELECT count(*) FROM c')" 2000
check_eq "rows per writer" "$(sql conc.db 'SELECT group_concat(k) FROM
    (SELECT count(*) AS k FROM c GROUP BY who)')" "500,500,500,500"

# 10000 envelopes streamed through one process give 10000 rows.
awk 'BEGIN { for (i = 0; i < 10000; i++)
	printf "{\"$trigger\":{\"id\":\"s%d\"},\"$last\":{\"n\":%d}}\n", i, i }' \
    >many
whook-insert --db many.db -t m -c --batch-ms 50 <many >out
check_eq "stream exit" "$?" 0
check_eq "stream lines" "$(wc -l <out)" 10000
check_eq "stream rows" "$(sql many.db 'SELECT count(*), sum(n) FROM m')" \
    "10000|49995000"
head -n 3 many | whook-insert --db one.db -t m -c --batch 1 >/dev/null
check_eq "batch of one exit" "$?" 0
check_eq "batch of one rows" "$(sql one.db 'SELECT count(*) FROM m')" 3

if command -v mandoc >/dev/null 2>&1; then
	out=$(mandoc -Tlint -Wwarning "$ROOT/man/whook-insert.1" 2>&1)
	check_eq "man page lint" "$out" ""
fi
