/*
 * JSON objects as rows of a sqlite3 table: each key is a column, and every
 * value is bound as a parameter, never written into SQL text, where names
 * appear only as quoted identifiers.  The rows of a batch share one
 * transaction (BEGIN IMMEDIATE ... COMMIT), and a row that does not fit
 * fails alone: sqlite undoes a failed statement, and a SAVEPOINT per row
 * undoes one when the schema has a trigger or a FAIL clause.  The
 * database is in WAL mode with a busy timeout, so several processes can
 * write one file.
 *
 * With an envelope id, store_insert first looks the id up in the table
 * whook_seen, per target table, and inserts nothing when it is there.
 * Otherwise the id is recorded with the row, and the row and its record
 * are committed, or undone, together: a log replayed after a crash
 * inserts each envelope exactly once.
 *
 * Errors map onto sysexits(3): a row that does not fit the table is
 * EX_DATAERR, a database that is busy, read-only, full or cannot be
 * opened is EX_TEMPFAIL so that the sender retries, anything else is
 * EX_SOFTWARE.  The reason is sqlite3_errmsg's text.
 */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "whook.h"

#define CACHE_SLOTS 16

enum fixed { BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK_TO, NFIXED };

static const char *const fixed_sql[NFIXED] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT whook_row",
    "RELEASE whook_row",
    "ROLLBACK TO whook_row",
};

/* The source of the rowid of an inserted row. */
enum rowid_kind {
	ROWID_RETURNING,   /* RETURNING rowid: a view, or not known */
	ROWID_LAST_INSERT, /* a rowid table: sqlite3_last_insert_rowid */
	ROWID_NONE	   /* a WITHOUT ROWID table: none */
};

/* Indexed by enum store_conflict. */
static const char *const insert_verb[] = {
    "INSERT",
    "INSERT OR IGNORE",
    "INSERT OR REPLACE",
    "INSERT",
};

/*
 * The envelope ids committed per table.  tbl ignores ASCII case, as
 * sqlite does in table names.  row_id is NULL when the INSERT gave no row
 * id, as when --on-conflict ignore kept the stored row.
 */
static const char seen_create_sql[] =
    "CREATE TABLE IF NOT EXISTS " STORE_SEEN_TABLE " ("
    "envelope_id TEXT NOT NULL, tbl TEXT NOT NULL COLLATE NOCASE, "
    "row_id INTEGER, at TEXT NOT NULL, "
    "PRIMARY KEY (envelope_id, tbl)) WITHOUT ROWID";
static const char seen_find_sql[] = "SELECT row_id FROM " STORE_SEEN_TABLE
				    " WHERE envelope_id = ?1 AND tbl = ?2";
static const char seen_add_sql[] =
    "INSERT INTO " STORE_SEEN_TABLE " (envelope_id, tbl, row_id, at) "
    "VALUES (?1, ?2, ?3, ?4)";

/* A prepared INSERT for one set of columns. */
struct cached {
	jv columns; /* the row's column names, when stmt is not NULL */
	sqlite3_stmt *stmt;
};

struct store {
	struct store_config cfg;
	sqlite3 *db;
	sqlite3_stmt *fixed[NFIXED];
	struct cached cache[CACHE_SLOTS];
	size_t next_slot;
	sqlite3_stmt *seen_find, *seen_add;
	int seen_ready; /* whook_seen exists, or was created in the txn */
	int seen_created_in_txn;
	int table_ready;       /* the table was found or created */
	enum rowid_kind rowid; /* of the table, once table_ready */
	int created_in_txn;    /* so a rollback undoes table_ready */
	int in_txn;
	int plain; /* the schema has no trigger and no FAIL clause */
	sqlite3_stmt *plain_find;
	char txn_at[32]; /* UTC time the transaction began, for "at" */
	size_t rows;	 /* rows inserted in the open transaction */
	int lost;	 /* sqlite rolled back rows not yet committed */
	char lost_reason[400];
	int defer;     /* store_defer_sync was called */
	int deferring; /* this connection commits with synchronous=NORMAL */
	int unsynced;  /* a commit since the last store_sync_fd */
	int wal_fd;    /* the WAL file when deferring, or -1 */
};

/* Maps an extended sqlite result code onto an exit status, and sets the
 * HTTP status 409 for a uniqueness conflict. */
static int
exit_of(int rc, int *status)
{
	*status = 0;
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_ROWID:
		*status = 409;
		return EX_DATAERR;
	}
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_TOOBIG:
		return EX_DATAERR;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_PROTOCOL:
		return EX_TEMPFAIL;
	default:
		return EX_SOFTWARE;
	}
}

/* Fills OUT from RC and the connection's message, and returns the exit
 * status.  WHAT, when not NULL, names the step that failed. */
static int
fail(struct store *s, int rc, const char *what, struct outcome *out)
{
	const char *message;

	message = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
	if (what != NULL)
		snprintf(
		    out->reason, sizeof(out->reason), "%s: %s", what, message);
	else
		snprintf(out->reason, sizeof(out->reason), "%s", message);
	out->exit = exit_of(rc, &out->status);
	return out->exit;
}

static int fail_data(struct outcome *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills OUT for a row that does not fit the table. */
static int
fail_data(struct outcome *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	out->status = 0;
	out->exit = EX_DATAERR;
	return EX_DATAERR;
}

static int
run_fixed(struct store *s, enum fixed which)
{
	int rc;

	rc = sqlite3_step(s->fixed[which]);
	sqlite3_reset(s->fixed[which]);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void
disconnect(struct store *s)
{
	size_t i;

	if (s->wal_fd != -1) {
		if (s->unsynced)
			fdatasync(s->wal_fd);
		close(s->wal_fd);
		s->wal_fd = -1;
	}
	s->unsynced = 0;
	s->deferring = 0;

	for (i = 0; i < NFIXED; i++) {
		sqlite3_finalize(s->fixed[i]);
		s->fixed[i] = NULL;
	}
	sqlite3_finalize(s->seen_find);
	sqlite3_finalize(s->seen_add);
	sqlite3_finalize(s->plain_find);
	s->seen_find = s->seen_add = s->plain_find = NULL;
	s->seen_ready = 0;
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (s->cache[i].stmt != NULL)
			jv_free(s->cache[i].columns);
		sqlite3_finalize(s->cache[i].stmt);
		s->cache[i].stmt = NULL;
	}
	sqlite3_close_v2(s->db);
	s->db = NULL;
	s->table_ready = 0;
	s->in_txn = 0;
}

/* Opens the WAL file of the connection, and syncs its folder once, as
 * sqlite does for a journal it has created.  Returns 0 or an errno. */
static int
open_wal(struct store *s)
{
	const char *path = NULL, *slash;
	char dir[4096];
	int fd, err;

#if SQLITE_VERSION_NUMBER >= 3031000
	path = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
#endif
	if (path == NULL || *path == '\0')
		return ENOENT;
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    (int)(slash == path ? 1 : slash - path), path);
	s->wal_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->wal_fd == -1)
		return errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = fd == -1 || fsync(fd) == -1 ? errno : 0;
	if (fd != -1)
		close(fd);
	if (err != 0) {
		close(s->wal_fd);
		s->wal_fd = -1;
	}
	return err;
}

#define WAL_RETRY_MS 5

/*
 * Switches the connection to WAL mode.  After store_defer_sync, and only
 * for a database file in WAL mode whose WAL file this process can open,
 * a commit only writes the WAL (synchronous=NORMAL, which still syncs at
 * each checkpoint), and store_sync_fd gives the WAL to sync.  Otherwise
 * sqlite's default synchronous=FULL stays, and each commit syncs.  A read
 * makes sqlite create the WAL file of a new database.
 */
static int
set_wal(struct store *s)
{
	sqlite3_stmt *mode;
	const char *path;
	int rc, wal, waited = 0;

	/* Two processes that open a new database at once both switch it to
	 * WAL, and sqlite can fail the second with SQLITE_BUSY at once, not
	 * after the busy timeout, so the switch is tried again here. */
	for (;;) {
		rc = sqlite3_prepare_v2(
		    s->db, "PRAGMA journal_mode=WAL", -1, &mode, NULL);
		if (rc != SQLITE_OK)
			return rc;
		wal =
		    sqlite3_step(mode) == SQLITE_ROW &&
		    sqlite3_stricmp(
			(const char *)sqlite3_column_text(mode, 0), "wal") == 0;
		rc = sqlite3_finalize(mode);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= s->cfg.busy_ms)
			break;
		sqlite3_sleep(WAL_RETRY_MS);
		waited += WAL_RETRY_MS;
	}
	if (rc != SQLITE_OK || !s->defer || !wal)
		return rc;
	path = sqlite3_db_filename(s->db, "main");
	if (path == NULL || *path == '\0')
		return SQLITE_OK; /* a temporary or in-memory database */
	rc = sqlite3_exec(
	    s->db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
	if (rc != SQLITE_OK || open_wal(s) != 0)
		return rc;
	rc = sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	s->deferring = rc == SQLITE_OK;
	return rc;
}

/*
 * Opens the database, or a "file:" URI as sqlite3(1) does.  WAL mode lets
 * readers go on while one process writes, and the busy timeout makes a
 * writer wait for another's commit instead of failing at once.  Foreign
 * keys, off by default in sqlite, are enforced like every other
 * constraint of the table.
 */
static int
open_db(struct store *s, struct outcome *out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
	int rc, i, code;

	rc = sqlite3_open_v2(s->cfg.db, &s->db, flags, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(s->db, 1);
		sqlite3_busy_timeout(s->db, s->cfg.busy_ms);
		rc = set_wal(s);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(
		    s->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
	for (i = 0; i < NFIXED && rc == SQLITE_OK; i++)
		rc = sqlite3_prepare_v3(s->db, fixed_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->fixed[i], NULL);
	if (rc == SQLITE_OK)
		return 0;
	code = fail(s, rc, s->cfg.db, out);
	disconnect(s);
	return code;
}

static jv
append_ident(jv sql, const char *name)
{
	const char *quote;

	sql = jv_string_append_str(sql, "\"");
	while ((quote = strchr(name, '"')) != NULL) {
		sql = jv_string_append_buf(sql, name, quote - name + 1);
		sql = jv_string_append_str(sql, "\"");
		name = quote + 1;
	}
	sql = jv_string_append_str(sql, name);
	return jv_string_append_str(sql, "\"");
}

/* Appends the names of COLUMNS (borrowed), each followed by SUFFIX. */
static jv
append_idents(jv sql, jv columns, const char *suffix)
{
	int i, n = jv_array_length(jv_copy(columns));
	jv name;

	for (i = 0; i < n; i++) {
		name = jv_array_get(jv_copy(columns), i);
		if (i > 0)
			sql = jv_string_append_str(sql, ", ");
		sql = append_ident(sql, jv_string_value(name));
		sql = jv_string_append_str(sql, suffix);
		jv_free(name);
	}
	return sql;
}

/* Returns whether V is stored as an INTEGER, with its value in *n: a
 * number with no fraction in int64's range, true or false, or a big
 * integer whose digits fit int64. */
static int
integer_of(jv v, long long *n)
{
	const char *digits;
	char *end;
	double d;

	switch (jv_get_kind(v)) {
	case JV_KIND_TRUE:
	case JV_KIND_FALSE:
		*n = jv_get_kind(v) == JV_KIND_TRUE;
		return 1;
	case JV_KIND_NUMBER:
		d = jv_number_value(v);
		if (!(d >= -0x1p63 && d < 0x1p63) || d != (double)(long long)d)
			return 0;
		*n = (long long)d;
		return 1;
	case JV_KIND_STRING:
		digits = json_bignum_digits(v);
		if (digits == NULL)
			return 0;
		errno = 0;
		*n = strtoll(digits, &end, 10);
		return errno == 0 && end != digits && *end == '\0';
	default:
		return 0;
	}
}

/* Binds V (borrowed) to parameter I: nested values as JSON text, a big
 * integer beyond int64 as the TEXT of its digits. */
static int
bind_value(sqlite3_stmt *st, int i, jv v)
{
	const char *digits;
	long long n;
	jv text;
	int rc;

	if (integer_of(v, &n))
		return sqlite3_bind_int64(st, i, n);
	switch (jv_get_kind(v)) {
	case JV_KIND_NUMBER:
		/* jq 1.6 reads 1e400 as infinity and writes it as the largest
		 * double, the value that a pipeline's next step stores. */
		if (isinf(jv_number_value(v)))
			return sqlite3_bind_double(
			    st, i, jv_number_value(v) > 0 ? DBL_MAX : -DBL_MAX);
		return sqlite3_bind_double(st, i, jv_number_value(v));
	case JV_KIND_STRING:
		digits = json_bignum_digits(v);
		if (digits != NULL)
			return sqlite3_bind_text(
			    st, i, digits, -1, SQLITE_TRANSIENT);
		return sqlite3_bind_text(st, i, jv_string_value(v),
		    jv_string_length_bytes(jv_copy(v)), SQLITE_TRANSIENT);
	case JV_KIND_ARRAY:
	case JV_KIND_OBJECT:
		text = json_dump(jv_copy(v));
		rc = sqlite3_bind_text(st, i, jv_string_value(text),
		    jv_string_length_bytes(jv_copy(text)), SQLITE_TRANSIENT);
		jv_free(text);
		return rc;
	default:
		return sqlite3_bind_null(st, i);
	}
}

static const char *
column_type(jv v)
{
	long long n;

	if (integer_of(v, &n))
		return "INTEGER";
	switch (jv_get_kind(v)) {
	case JV_KIND_NUMBER:
		return "REAL";
	case JV_KIND_STRING:
		return "TEXT";
	default:
		return "ANY";
	}
}

/* Rejects a column name that SQL text cannot carry: sqlite reads
 * identifiers up to a NUL byte. */
static int
check_names(jv columns, struct outcome *out)
{
	int i, n = jv_array_length(jv_copy(columns)), bad = 0;
	jv name;

	for (i = 0; i < n && !bad; i++) {
		name = jv_array_get(jv_copy(columns), i);
		bad = memchr(jv_string_value(name), '\0',
			  jv_string_length_bytes(jv_copy(name))) != NULL;
		jv_free(name);
	}
	if (bad)
		return fail_data(out, "a column name contains a NUL byte");
	return 0;
}

static int
check_keys(const struct store *s, jv row, struct outcome *out)
{
	size_t i;

	for (i = 0; i < s->cfg.nkeys; i++)
		if (!jv_object_has(jv_copy(row), jv_string(s->cfg.keys[i])))
			return fail_data(out,
			    "key column %s is not in the first row, which "
			    "--create makes the table from",
			    s->cfg.keys[i]);
	return 0;
}

static int
check_table(struct store *s, struct outcome *out)
{
	static const char query[] =
	    "SELECT 1 FROM sqlite_master WHERE "
	    "type IN ('table', 'view') AND name = ?1 COLLATE NOCASE";
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, query, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "sqlite_master", out);
	sqlite3_bind_text(st, 1, s->cfg.table, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return fail(s, rc, "sqlite_master", out);
	snprintf(out->reason, sizeof(out->reason),
	    "table %s not found in %s: create it, or pass --create",
	    s->cfg.table, s->cfg.db);
	out->exit = EX_SOFTWARE;
	return EX_SOFTWARE;
}

/* Creates the table from ROW (borrowed) as a STRICT table, so that a
 * later value of another type fails instead of being stored as it is. */
static int
create_table(struct store *s, jv row, struct outcome *out)
{
	jv columns = jv_keys_unsorted(jv_copy(row)), sql, name, value;
	int i, n = jv_array_length(jv_copy(columns)), rc, code;
	size_t k;

	if (n == 0) {
		/* An empty row fits a table that exists, as DEFAULT VALUES. */
		jv_free(columns);
		if (check_table(s, out) == 0)
			return 0;
		return fail_data(out,
		    "cannot create table %s from an empty object",
		    s->cfg.table);
	}
	code = check_names(columns, out);
	if (code == 0)
		code = check_keys(s, row, out);
	if (code != 0) {
		jv_free(columns);
		return code;
	}
	sql = append_ident(
	    jv_string("CREATE TABLE IF NOT EXISTS "), s->cfg.table);
	for (i = 0; i < n; i++) {
		name = jv_array_get(jv_copy(columns), i);
		value = jv_object_get(jv_copy(row), jv_copy(name));
		sql = jv_string_append_str(sql, i == 0 ? " (" : ", ");
		sql = append_ident(sql, jv_string_value(name));
		sql = jv_string_append_str(sql, " ");
		sql = jv_string_append_str(sql, column_type(value));
		jv_free(value);
		jv_free(name);
	}
	for (k = 0; k < s->cfg.nkeys; k++) {
		sql = jv_string_append_str(
		    sql, k == 0 ? ", PRIMARY KEY (" : ", ");
		sql = append_ident(sql, s->cfg.keys[k]);
	}
	sql = jv_string_append_str(
	    sql, s->cfg.nkeys > 0 ? ")) STRICT" : ") STRICT");
	rc = sqlite3_exec(s->db, jv_string_value(sql), NULL, NULL, NULL);
	jv_free(sql);
	jv_free(columns);
	return rc == SQLITE_OK ? 0 : fail(s, rc, "create table", out);
}

/* Appends the upsert clause: every column but the keys takes the value
 * that failed to insert. */
static jv
append_upsert(const struct store *s, jv sql, jv columns)
{
	int i, n = jv_array_length(jv_copy(columns)), set = 0;
	size_t k;
	jv name;

	for (k = 0; k < s->cfg.nkeys; k++) {
		sql =
		    jv_string_append_str(sql, k == 0 ? " ON CONFLICT (" : ", ");
		sql = append_ident(sql, s->cfg.keys[k]);
	}
	sql = jv_string_append_str(sql, ") DO ");
	for (i = 0; i < n; i++) {
		name = jv_array_get(jv_copy(columns), i);
		for (k = 0; k < s->cfg.nkeys; k++)
			if (sqlite3_stricmp(
				s->cfg.keys[k], jv_string_value(name)) == 0)
				break;
		if (k == s->cfg.nkeys) {
			sql = jv_string_append_str(
			    sql, set++ ? ", " : "UPDATE SET ");
			sql = append_ident(sql, jv_string_value(name));
			sql = append_ident(
			    jv_string_append_str(sql, " = excluded."),
			    jv_string_value(name));
		}
		jv_free(name);
	}
	return jv_string_append_str(sql, set ? "" : "NOTHING");
}

/* Returns the INSERT for COLUMNS (borrowed).  RETURNING gives the rowid
 * of an updated row, which sqlite3_last_insert_rowid does not, but it
 * cost about 1 us more a row in a benchmark of store_insert, so the other
 * inserts into a rowid table read the rowid from the connection.  A
 * WITHOUT ROWID table has no rowid to give. */
static jv
insert_sql(const struct store *s, jv columns)
{
	int i, n = jv_array_length(jv_copy(columns));
	/* INSERT OR IGNORE also skips a row that fails NOT NULL or CHECK,
	 * so an ordinary table takes DO NOTHING, which only a uniqueness
	 * conflict reaches.  sqlite allows no upsert on a view, a virtual
	 * table or DEFAULT VALUES. */
	int nothing = s->cfg.conflict == STORE_IGNORE &&
		      s->rowid != ROWID_RETURNING && n > 0;
	jv sql;

	sql = jv_string_append_str(
	    jv_string(nothing ? "INSERT" : insert_verb[s->cfg.conflict]),
	    " INTO ");
	sql = append_ident(sql, s->cfg.table);
	if (n == 0) {
		sql = jv_string_append_str(sql, " DEFAULT VALUES");
	} else {
		sql =
		    append_idents(jv_string_append_str(sql, " ("), columns, "");
		for (i = 0; i < n; i++)
			sql = jv_string_append_str(
			    sql, i == 0 ? ") VALUES (?" : ", ?");
		sql = jv_string_append_str(sql, ")");
		if (s->cfg.conflict == STORE_UPDATE)
			sql = append_upsert(s, sql, columns);
		if (nothing)
			sql = jv_string_append_str(
			    sql, " ON CONFLICT DO NOTHING");
	}
	if (s->rowid == ROWID_NONE ||
	    (s->rowid == ROWID_LAST_INSERT && s->cfg.conflict != STORE_UPDATE))
		return sql;
	return jv_string_append_str(sql, " RETURNING rowid");
}

/* Returns whether the table exists but lacks one of COLUMNS (borrowed),
 * which makes a failed prepare the row's fault rather than the flow's. */
static int
lacks_column(struct store *s, jv columns)
{
	static const char query[] =
	    "SELECT count(*), "
	    "count(*) FILTER (WHERE name = ?2 COLLATE NOCASE) "
	    "FROM pragma_table_info(?1)";
	int i, n = jv_array_length(jv_copy(columns)), lacks = 0;
	sqlite3_stmt *st;
	jv name;

	if (sqlite3_prepare_v2(s->db, query, -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, s->cfg.table, -1, SQLITE_STATIC);
	for (i = 0; i < n && !lacks; i++) {
		name = jv_array_get(jv_copy(columns), i);
		sqlite3_bind_text(
		    st, 2, jv_string_value(name), -1, SQLITE_TRANSIENT);
		lacks = sqlite3_step(st) == SQLITE_ROW &&
			sqlite3_column_int(st, 0) > 0 &&
			sqlite3_column_int(st, 1) == 0;
		sqlite3_reset(st);
		jv_free(name);
	}
	sqlite3_finalize(st);
	return lacks;
}

/* Finds or prepares the INSERT for COLUMNS (borrowed), evicting the
 * oldest statement when the cache is full. */
static int
prepare_insert(
    struct store *s, jv columns, sqlite3_stmt **stmt, struct outcome *out)
{
	struct cached *c = NULL;
	size_t i;
	int rc, code;
	jv sql;

	for (i = 0; i < CACHE_SLOTS && c == NULL; i++)
		if (s->cache[i].stmt != NULL &&
		    jv_equal(jv_copy(s->cache[i].columns), jv_copy(columns)))
			c = &s->cache[i];
	code = c == NULL ? check_names(columns, out) : 0;
	if (c != NULL || code != 0) {
		*stmt = c != NULL ? c->stmt : NULL;
		return code;
	}
	sql = insert_sql(s, columns);
	rc = sqlite3_prepare_v3(s->db, jv_string_value(sql), -1,
	    SQLITE_PREPARE_PERSISTENT, stmt, NULL);
	jv_free(sql);
	if (rc != SQLITE_OK) {
		code = fail(s, rc, NULL, out);
		if (rc == SQLITE_ERROR && lacks_column(s, columns))
			out->exit = code = EX_DATAERR;
		return code;
	}
	c = &s->cache[s->next_slot];
	s->next_slot = (s->next_slot + 1) % CACHE_SLOTS;
	if (c->stmt != NULL)
		jv_free(c->columns);
	sqlite3_finalize(c->stmt);
	c->stmt = *stmt;
	c->columns = jv_copy(columns);
	return 0;
}

/* Returns whether SQL still compiles against the schema.  An error in
 * sqlite3_step that is not a constraint comes from the values (malformed
 * JSON for json_extract) or from the schema (a table dropped since). */
static int
compiles(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int ok = sql != NULL &&
		 sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;

	sqlite3_finalize(st);
	return ok;
}

static int
insert_row(
    struct store *s, jv row, struct store_result *res, struct outcome *out)
{
	jv columns = jv_keys_unsorted(jv_copy(row)), name, value;
	int i, n = jv_array_length(jv_copy(columns)), rc = SQLITE_OK, code;
	sqlite3_stmt *st;

	code = prepare_insert(s, columns, &st, out);
	for (i = 0; i < n && code == 0 && rc == SQLITE_OK; i++) {
		name = jv_array_get(jv_copy(columns), i);
		value = jv_object_get(jv_copy(row), name);
		rc = bind_value(st, i + 1, value);
		jv_free(value);
	}
	jv_free(columns);
	if (code != 0)
		return code;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		res->rowid = sqlite3_column_int64(st, 0);
		res->has_rowid = 1;
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_DONE) {
		res->changes = sqlite3_changes(s->db);
		if (s->rowid == ROWID_LAST_INSERT &&
		    sqlite3_column_count(st) == 0 && res->changes > 0) {
			res->rowid = sqlite3_last_insert_rowid(s->db);
			res->has_rowid = 1;
		}
		sqlite3_reset(st);
		return 0;
	}
	code = fail(s, rc, NULL, out);
	sqlite3_reset(st);
	if (rc == SQLITE_ERROR && compiles(s->db, sqlite3_sql(st))) {
		/* The statement is sound, so the row's values failed it: a
		 * generated column or a CHECK whose function rejected them. */
		out->exit = code = EX_DATAERR;
		out->status = 0;
	}
	return code;
}

/* Ends the transaction's state.  After a rollback the tables it created
 * are gone, so they are made again at the next row that needs them. */
static void
end_txn(struct store *s)
{
	if (s->created_in_txn)
		s->table_ready = 0;
	s->created_in_txn = 0;
	if (s->seen_created_in_txn)
		s->seen_ready = 0;
	s->seen_created_in_txn = 0;
	s->in_txn = 0;
	s->rows = 0;
}

/*
 * Undoes a failed row (in its savepoint when IN_SAVEPOINT) and returns
 * CODE.  After SQLITE_FULL, IOERR, BUSY or NOMEM, sqlite may have rolled
 * the whole transaction back, and the earlier rows of the batch with it:
 * the batch is then lost and store_commit reports it.  A transaction
 * left with no row is rolled back so that it does not hold the write lock.
 * NOTE: no test reaches the lost batch, which needs a full disk or an I/O
 * error in the middle of a batch.
 */
static int
abandon_row(
    struct store *s, int code, int in_savepoint, const struct outcome *out)
{
	int rc = SQLITE_OK;

	if (!s->in_txn)
		return code;
	if (!sqlite3_get_autocommit(s->db) && in_savepoint) {
		rc = run_fixed(s, ROLLBACK_TO);
		if (rc == SQLITE_OK)
			rc = run_fixed(s, RELEASE);
	}
	if (sqlite3_get_autocommit(s->db) || rc != SQLITE_OK) {
		if (s->rows > 0) {
			s->lost = 1;
			snprintf(s->lost_reason, sizeof(s->lost_reason),
			    "%.399s", out->reason);
		}
		if (!sqlite3_get_autocommit(s->db))
			run_fixed(s, ROLLBACK);
		end_txn(s);
	} else if (s->rows == 0) {
		run_fixed(s, ROLLBACK);
		end_txn(s);
	}
	return code;
}

/* Creates whook_seen if it does not exist and prepares its statements. */
static int
ensure_seen(struct store *s, struct outcome *out)
{
	int rc;

	if (s->seen_ready)
		return 0;
	rc = sqlite3_exec(s->db, seen_create_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK && s->seen_find == NULL)
		rc = sqlite3_prepare_v3(s->db, seen_find_sql, -1,
		    SQLITE_PREPARE_PERSISTENT, &s->seen_find, NULL);
	if (rc == SQLITE_OK && s->seen_add == NULL)
		rc = sqlite3_prepare_v3(s->db, seen_add_sql, -1,
		    SQLITE_PREPARE_PERSISTENT, &s->seen_add, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, STORE_SEEN_TABLE, out);
	s->seen_ready = 1;
	s->seen_created_in_txn = 1;
	return 0;
}

static int
bind_id(struct store *s, sqlite3_stmt *st, jv id)
{
	int rc;

	rc = sqlite3_bind_text(st, 1, jv_string_value(id),
	    jv_string_length_bytes(jv_copy(id)), SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 2, s->cfg.table, -1, SQLITE_STATIC);
	return rc;
}

/* Sets res->duplicate, and the recorded row id, when ID (borrowed) is
 * recorded for the table already. */
static int
find_seen(struct store *s, jv id, struct store_result *res, struct outcome *out)
{
	int rc;

	rc = bind_id(s, s->seen_find, id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s->seen_find);
	if (rc == SQLITE_ROW) {
		res->duplicate = 1;
		res->has_rowid =
		    sqlite3_column_type(s->seen_find, 0) == SQLITE_INTEGER;
		res->rowid = sqlite3_column_int64(s->seen_find, 0);
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s->seen_find);
	if (rc != SQLITE_DONE)
		return fail(s, rc, STORE_SEEN_TABLE, out);
	return 0;
}

/* Records ID (borrowed) with the row that RES describes. */
static int
add_seen(
    struct store *s, jv id, const struct store_result *res, struct outcome *out)
{
	int rc;

	rc = bind_id(s, s->seen_add, id);
	if (rc == SQLITE_OK)
		rc = res->has_rowid
			 ? sqlite3_bind_int64(s->seen_add, 3, res->rowid)
			 : sqlite3_bind_null(s->seen_add, 3);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(
		    s->seen_add, 4, s->txn_at, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s->seen_add);
	sqlite3_reset(s->seen_add);
	if (rc != SQLITE_DONE)
		return fail(s, rc, STORE_SEEN_TABLE, out);
	/* A whook_seen made by hand with an IGNORE clause can drop it. */
	if (sqlite3_changes(s->db) != 1) {
		snprintf(out->reason, sizeof(out->reason),
		    "%s: the record was not written", STORE_SEEN_TABLE);
		out->status = 0;
		out->exit = EX_SOFTWARE;
		return EX_SOFTWARE;
	}
	return 0;
}

/* Records the time for whook_seen.at once a transaction, because sqlite's
 * strftime('now') in the INSERT took about 1 us a row. */
static void
stamp_txn(struct store *s)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(s->txn_at, sizeof(s->txn_at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(s->txn_at + n, sizeof(s->txn_at) - n, ".%03ldZ",
	    ts.tv_nsec / 1000000);
}

/* Returns how the table gives the rowid of an insert, by sqlite's
 * table_list pragma (3.37 and later).  sqlite3_last_insert_rowid is not
 * set by an insert into a view or a virtual table. */
static enum rowid_kind
rowid_kind_of(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, rows = 0, plain = 0, none = 0;

	rc = sqlite3_prepare_v2(s->db,
	    "SELECT type = 'table', wr FROM pragma_table_list(?1)", -1, &st,
	    NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, s->cfg.table, -1, SQLITE_STATIC);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		if (sqlite3_column_int(st, 0) == 1)
			sqlite3_column_int(st, 1) ? none++ : plain++;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE || rows == 0)
		return ROWID_RETURNING;
	if (plain == rows)
		return ROWID_LAST_INSERT;
	return none == rows ? ROWID_NONE : ROWID_RETURNING;
}

/*
 * Returns whether the database has no trigger and no FAIL conflict
 * clause (nor any other text "fail" in its schema).  Only these can make
 * a failed statement keep some of its changes, since sqlite's FAIL
 * resolution keeps what the statement did before the error, also in a
 * table that a foreign key's action reaches.  Within BEGIN IMMEDIATE no
 * other connection can change the schema.
 */
static int
plain_schema(struct store *s)
{
	static const char sql[] =
	    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' OR "
	    "sql LIKE '%fail%'";
	int rc, plain = 0;

	rc = s->plain_find != NULL
		 ? SQLITE_OK
		 : sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		       &s->plain_find, NULL);
	if (rc == SQLITE_OK && sqlite3_step(s->plain_find) == SQLITE_ROW)
		plain = sqlite3_column_int(s->plain_find, 0) == 0;
	if (s->plain_find != NULL)
		sqlite3_reset(s->plain_find);
	return plain;
}

/* Connects, opens the batch's transaction and makes sure of the table. */
static int
begin_row(struct store *s, jv row, struct outcome *out)
{
	int rc, code;

	if (s->db == NULL) {
		code = open_db(s, out);
		if (code != 0)
			return code;
	}
	if (!s->in_txn) {
		rc = run_fixed(s, BEGIN);
		if (rc != SQLITE_OK)
			return fail(s, rc, "begin", out);
		s->in_txn = 1;
		s->plain = plain_schema(s);
		stamp_txn(s);
	}
	if (s->table_ready)
		return 0;
	if (!s->cfg.create)
		code = check_table(s, out);
	else if (sqlite3_libversion_number() < 3037000)
		code = fail_data(out,
		    "--create: sqlite %s has no STRICT tables, which need "
		    "3.37 or later",
		    sqlite3_libversion());
	else
		code = create_table(s, row, out);
	s->table_ready = code == 0;
	if (code == 0)
		s->rowid = rowid_kind_of(s);
	s->created_in_txn = code == 0 && s->cfg.create;
	return code;
}

/* Rolls the open transaction back, and with it the earlier rows of the
 * batch, which store_commit then reports as lost; returns CODE. */
static int
abandon_batch(struct store *s, int code, const struct outcome *out)
{
	if (s->rows > 0) {
		s->lost = 1;
		snprintf(s->lost_reason, sizeof(s->lost_reason), "%.399s",
		    out->reason);
	}
	if (!sqlite3_get_autocommit(s->db))
		run_fixed(s, ROLLBACK);
	end_txn(s);
	return code;
}

/*
 * Inserts ROW and records ID into an ordinary table of a plain schema.
 * There a failed statement leaves no change, so a row that does not fit
 * fails alone without a savepoint, which took about 1 us a row.  The
 * record cannot conflict, because find_seen found none.  It fails only
 * when the database does (full, I/O error) or a constraint added to
 * whook_seen by hand refuses it.  The row is then undone with the whole
 * batch, as sqlite itself may do after such an error.
 */
static int
insert_plain(struct store *s, jv row, jv id, struct store_result *res,
    struct outcome *out)
{
	int code;

	code = insert_row(s, row, res, out);
	if (code != 0)
		return abandon_row(s, code, 0, out);
	if (jv_get_kind(id) == JV_KIND_STRING) {
		code = add_seen(s, id, res, out);
		if (code != 0)
			return abandon_batch(s, code, out);
	}
	s->rows++;
	return 0;
}

/* Inserts ROW and records ID, both in the row's savepoint. */
static int
insert_in_savepoint(struct store *s, jv row, jv id, struct store_result *res,
    struct outcome *out)
{
	int code, rc;

	if (s->plain && s->rowid != ROWID_RETURNING)
		return insert_plain(s, row, id, res, out);

	rc = run_fixed(s, SAVEPOINT);
	if (rc != SQLITE_OK)
		return abandon_row(s, fail(s, rc, "savepoint", out), 0, out);
	code = insert_row(s, row, res, out);
	if (code == 0 && jv_get_kind(id) == JV_KIND_STRING)
		code = add_seen(s, id, res, out);
	if (code == 0) {
		rc = run_fixed(s, RELEASE);
		if (rc != SQLITE_OK)
			code = fail(s, rc, "release", out);
	}
	if (code != 0)
		return abandon_row(s, code, 1, out);
	s->rows++;
	return 0;
}

int
store_insert(struct store *s, jv row, jv id, struct store_result *res,
    struct outcome *out)
{
	int code;

	memset(res, 0, sizeof(*res));
	if (s->lost) {
		snprintf(out->reason, sizeof(out->reason),
		    "not inserted: the batch was rolled back after: %s",
		    s->lost_reason);
		out->exit = EX_TEMPFAIL;
		return EX_TEMPFAIL;
	}
	if (jv_get_kind(row) != JV_KIND_OBJECT)
		return fail_data(out, "row is not a JSON object");
	code = begin_row(s, row, out);
	if (code == 0 && jv_get_kind(id) == JV_KIND_STRING) {
		code = ensure_seen(s, out);
		if (code == 0)
			code = find_seen(s, id, res, out);
	}
	if (code != 0)
		return abandon_row(s, code, 0, out);
	if (res->duplicate)
		return 0;
	return insert_in_savepoint(s, row, id, res, out);
}

/* Commits the open transaction.  On failure every row of it is gone, and
 * the caller fails each envelope of the batch. */
int
store_commit(struct store *s, struct outcome *out)
{
	int rc, code;

	if (s->lost) {
		s->lost = 0;
		snprintf(out->reason, sizeof(out->reason),
		    "batch rolled back: %s", s->lost_reason);
		out->exit = EX_TEMPFAIL;
		return EX_TEMPFAIL;
	}
	if (!s->in_txn)
		return 0;
	rc = run_fixed(s, COMMIT);
	if (rc == SQLITE_OK) {
		s->created_in_txn = 0;
		s->seen_created_in_txn = 0;
		s->unsynced = s->deferring;
		end_txn(s);
		return 0;
	}
	code = fail(s, rc, "commit", out);
	if (!sqlite3_get_autocommit(s->db))
		run_fixed(s, ROLLBACK);
	end_txn(s);
	return code;
}

void
store_defer_sync(struct store *s)
{
	s->defer = 1;
}

int
store_sync_fd(struct store *s, int *fd, struct outcome *out)
{
	*fd = -1;
	if (!s->unsynced)
		return 0;
	s->unsynced = 0;
	*fd = fcntl(s->wal_fd, F_DUPFD_CLOEXEC, 0);
	if (*fd != -1)
		return 0;
	/* With no descriptor to spare, sync here. */
	if (fdatasync(s->wal_fd) == 0)
		return 0;
	snprintf(out->reason, sizeof(out->reason), "%s: fdatasync: %s",
	    s->cfg.db, strerror(errno));
	out->status = 0;
	out->exit = EX_TEMPFAIL;
	return EX_TEMPFAIL;
}

/* sqlite's count of the memory it holds takes a global lock on every
 * allocation; nothing here reads it.  The setting must come before the
 * first connection, and a later call fails harmlessly. */
static void
configure_sqlite(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct store *
store_new(const struct store_config *cfg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct store *s = calloc(1, sizeof(*s));

	pthread_once(&once, configure_sqlite);

	if (s != NULL) {
		s->cfg = *cfg;
		s->wal_fd = -1;
	}
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	if (s->db != NULL && s->in_txn)
		run_fixed(s, ROLLBACK);
	disconnect(s);
	free(s);
}
