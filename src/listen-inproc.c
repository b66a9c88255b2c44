/*
 * In-process flows of whook-listen --persistent: a flow file that names
 * whook-run is loaded once (flowfile_load, chain_build) and its stages run
 * on one thread of their own, through the same batch code as ndjson_run.
 * The thread takes the envelopes waiting in its queue into one batch, up
 * to the chain's batch size and time, processes each, commits once, and
 * only then responds to each request with plain C data: a status and, for
 * --respond, the body text.  An envelope is handed over whole, and the
 * request thread keeps no reference to it, because libjq 1.6 counts jv
 * references without atomic operations.
 *
 * When the chain can leave its syncs to the caller (whook-insert into a
 * WAL file), a second thread makes the commits durable: it calls
 * fdatasync(2) on the WAL for every batch handed to it so far.  Only
 * then does it send their responses.  Meanwhile the flow's thread runs the
 * envelopes that arrive into the next batch, which it commits once the
 * sync has ended, so one sync covers all that came in during the last.
 * Every response, even one whose batch wrote nothing, waits for the syncs
 * before it, because the 200 for a duplicate relies on an earlier commit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "whook.h"

#define INPROC_BATCH_MAX 512
#define INPROC_BATCH_MS 100
#define INPROC_SYNC_FDS 16

struct job {
	jv env;
	inproc_done *done;
	void *arg;
	struct job *next;
};

/* A response that waits for its batch's sync. */
struct answer {
	inproc_done *done;
	void *arg;
	struct persist_answer a;
};

/* The responses of one batch and the descriptors to sync for it. */
struct handoff {
	int fds[INPROC_SYNC_FDS];
	int nfds;
	struct answer *answers;
	size_t n;
	struct handoff *next;
};

struct inproc {
	char *file;
	enum listen_respond respond;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t queued; /* a job came, or the syncer became idle */
	struct job *head, **tail;
	int stopping;
	int stopped; /* the thread has ended: new jobs get 503 */
	/* A copy of the paths the chain's steps read, for the request
	 * threads.  It is NULL until the chain is built, and when a step or
	 * --respond output may read the whole envelope. */
	_Atomic(struct reads *) reads;
	/* The syncer, when deferring. */
	int deferring;
	pthread_t syncer;
	pthread_cond_t handed;
	struct handoff *handoffs, **handoffs_tail;
	int syncing; /* the syncer works on handoffs it took */
	int sync_stop;
};

/* The job that emit_answer responds to next, and the responses it made. */
struct cursor {
	struct inproc *f;
	struct job *job;
	struct answer *answers;
	size_t n, cap;
};

/* getopt_long, which every stage builder runs, keeps global state. */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns $error.status of ENV (borrowed), 500 for an $error without
 * one, or 0 when there is no $error. */
static int
error_status(jv env)
{
	jv err = jv_object_get(jv_copy(env), jv_string("$error")), st;
	int status = 0;

	if (jv_get_kind(err) == JV_KIND_OBJECT) {
		status = 500;
		st = jv_object_get(jv_copy(err), jv_string("status"));
		if (jv_get_kind(st) == JV_KIND_NUMBER &&
		    jv_number_value(st) >= 100 && jv_number_value(st) <= 599)
			status = (int)jv_number_value(st);
		jv_free(st);
	} else if (jv_is_valid(err) && jv_get_kind(err) != JV_KIND_NULL) {
		status = 500;
	}
	jv_free(err);
	return status;
}

static char *
text_of(jv value, size_t *len)
{
	jv text = json_dump(value);
	char *s;

	*len = jv_string_length_bytes(jv_copy(text));
	s = malloc(*len + 1);
	if (s != NULL)
		memcpy(s, jv_string_value(text), *len + 1);
	jv_free(text);
	return s;
}

/* Converts the outcome envelope ENV (consumed, kept in A) into the
 * request's response. */
static void
answer_of(jv env, enum listen_respond respond, struct persist_answer *a)
{
	jv last;

	memset(a, 0, sizeof(*a));
	a->outcome = 1;
	a->status = error_status(env);
	if (a->status == 0)
		a->status = 200;
	if (respond == RESPOND_LAST) {
		last = jv_object_get(jv_copy(env), jv_string("$last"));
		if (!jv_is_valid(last)) {
			jv_free(last);
			last = jv_null();
		}
		a->body = text_of(last, &a->len);
		a->ctype = "application/json";
	} else if (respond == RESPOND_OUTPUT) {
		a->body = text_of(jv_copy(env), &a->len);
		a->ctype = "application/json";
	}
	a->env = env;
}

/* Sends the N responses, each with status FAIL instead when FAIL is not 0. */
static void
send_answers(struct answer *answers, size_t n, int fail)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (fail != 0) {
			free(answers[i].a.body);
			answers[i].a.body = NULL;
			answers[i].a.len = 0;
			answers[i].a.ctype = NULL;
			answers[i].a.status = fail;
		}
		answers[i].done(answers[i].arg, &answers[i].a);
	}
}

static void
emit_answer(
    void *arg, jv env, jv original, const char *text, size_t len, int left_out)
{
	struct cursor *c = arg;
	struct answer *grown;
	size_t cap;

	(void)text;
	(void)len;
	(void)left_out; /* envelopes built here are whole */
	jv_free(original);
	if (c->job == NULL) {
		jv_free(env);
		return;
	}
	if (c->n == c->cap) {
		cap = c->cap > 0 ? 2 * c->cap : 64;
		grown = realloc(c->answers, cap * sizeof(*grown));
		if (grown == NULL) {
			struct persist_answer a = {.status = 500};

			jv_free(env); /* not kept for the sync: not a 2xx */
			c->job->done(c->job->arg, &a);
			c->job = c->job->next;
			return;
		}
		c->answers = grown;
		c->cap = cap;
	}
	c->answers[c->n].done = c->job->done;
	c->answers[c->n].arg = c->job->arg;
	answer_of(env, c->f->respond, &c->answers[c->n].a);
	c->n++;
	c->job = c->job->next;
}

/* Responds STATUS to the jobs from FROM on, which got no outcome, and frees
 * every job of JOBS. */
static void
jobs_finish(struct job *jobs, struct job *from, int status)
{
	struct persist_answer a = {.status = status};
	struct job *j, *next;

	for (j = from; j != NULL; j = j->next)
		j->done(j->arg, &a);
	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		jv_free(j->env);
		free(j);
	}
}

/* Loads the flow file and builds its chain, under build_lock. */
static struct chain *
load_chain(struct inproc *f, struct flowfile *ff)
{
	struct chain *c = NULL;
	char why[512];
	int status;

	pthread_mutex_lock(&build_lock);
	if (flowfile_load(f->file, ff, why, sizeof(why)) == -1) {
		msg_error("%s: %s", f->file, why);
	} else {
		c = chain_build(ff, &status);
		if (c == NULL)
			flowfile_free(ff);
	}
	pthread_mutex_unlock(&build_lock);
	msg_init("whook-listen");
	if (c == NULL)
		msg_error("%s: in-process flow could not be built: every "
			  "request to it gets 500",
		    f->file);
	return c;
}

/* Syncs the descriptors of the handoffs from H on, each file once.
 * Returns 0 or the first errno. */
static int
sync_handoffs(struct handoff *h)
{
	struct stat seen[64], st;
	size_t nseen = 0, i;
	int k, err = 0;

	for (; h != NULL; h = h->next) {
		for (k = 0; k < h->nfds; k++) {
			if (fstat(h->fds[k], &st) == -1) {
				err = err != 0 ? err : errno;
				continue;
			}
			for (i = 0; i < nseen; i++)
				if (seen[i].st_dev == st.st_dev &&
				    seen[i].st_ino == st.st_ino)
					break;
			if (i < nseen)
				continue;
			if (fdatasync(h->fds[k]) == -1)
				err = err != 0 ? err : errno;
			if (nseen < sizeof(seen) / sizeof(seen[0]))
				seen[nseen++] = st;
		}
	}
	return err;
}

/* Sends the responses of the handoffs from H on, then frees them. */
static void
finish_handoffs(struct inproc *f, struct handoff *h, int err)
{
	struct handoff *next;
	size_t n = 0;
	int k;

	for (; h != NULL; h = next) {
		next = h->next;
		send_answers(h->answers, h->n, err != 0 ? 503 : 0);
		n += h->n;
		for (k = 0; k < h->nfds; k++)
			close(h->fds[k]);
		free(h->answers);
		free(h);
	}
	if (err != 0)
		msg_error("%s: fdatasync: %s: %zu requests answered 503",
		    f->file, strerror(err), n);
}

/* The syncer's thread: syncs what was handed to it, then responds. */
static void *
inproc_sync(void *arg)
{
	struct inproc *f = arg;
	struct handoff *h;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (f->handoffs == NULL && !f->sync_stop)
			pthread_cond_wait(&f->handed, &f->lock);
		h = f->handoffs;
		if (h == NULL)
			break;
		f->handoffs = NULL;
		f->handoffs_tail = &f->handoffs;
		f->syncing = 1;
		pthread_mutex_unlock(&f->lock);
		finish_handoffs(f, h, sync_handoffs(h));
		pthread_mutex_lock(&f->lock);
		f->syncing = 0;
		pthread_cond_signal(&f->queued);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* Sends the responses of cursor C, at once or, when deferring, once the
 * syncer has synced what the chain of ST gives for them. */
static void
hand_off(struct inproc *f, struct stage *st, struct cursor *c)
{
	struct handoff *h;
	struct outcome oc;
	int n;

	if (!f->deferring) {
		send_answers(c->answers, c->n, 0);
		free(c->answers);
		return;
	}
	/* Without a handoff the commit stays unsynced until a later sync of
	 * the same file, so its requests get 503. */
	h = calloc(1, sizeof(*h));
	memset(&oc, 0, sizeof(oc));
	n = h != NULL ? st->sync_fds(st->ctx, h->fds, INPROC_SYNC_FDS, &oc)
		      : -1;
	if (n < 0) {
		msg_error("%s: %s: %s", f->file,
		    oc.step != NULL ? oc.step : "whook-insert",
		    h != NULL ? oc.reason : "out of memory");
		send_answers(c->answers, c->n, 503);
		free(c->answers);
		free(h);
		return;
	}
	h->nfds = n;
	h->answers = c->answers;
	h->n = c->n;
	pthread_mutex_lock(&f->lock);
	*f->handoffs_tail = h;
	f->handoffs_tail = &h->next;
	pthread_cond_signal(&f->handed);
	pthread_mutex_unlock(&f->lock);
}

/* The batch that the flow's thread fills. */
struct open_batch {
	struct ndjson_batch *b;
	struct stage *st;
	struct job *jobs, **tail;
	size_t n;
	long long opened;
};

/* Commits the open batch and hands its responses off. */
static void
commit_batch(struct inproc *f, struct open_batch *ob)
{
	struct cursor c = {f, ob->jobs, NULL, 0, 0};

	ndjson_batch_flush(ob->b, emit_answer, &c);
	hand_off(f, ob->st, &c);
	jobs_finish(ob->jobs, c.job, 500);
	ob->jobs = NULL;
	ob->tail = &ob->jobs;
	ob->n = 0;
}

/*
 * Waits for work.  Returns NULL when the open batch of OPEN envelopes is
 * to be committed: it has ROOM for no more, or, with a syncer, no job
 * waits and the syncer is idle, or, without one, at once.  With OPEN 0,
 * returns NULL when the flow is stopping and its queue is empty.
 * Otherwise returns the jobs waiting, at most ROOM.  Taking every job
 * that waits before a commit makes batches larger, and each commit
 * writes and syncs a few pages however many rows it holds.
 */
static struct job *
take_jobs(struct inproc *f, size_t open, size_t room)
{
	struct job *jobs = NULL, **end;
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		if (open > 0 && (room == 0 || !f->deferring ||
				    (f->head == NULL && f->handoffs == NULL &&
					!f->syncing)))
			break;
		if (f->head != NULL) {
			jobs = f->head;
			for (end = &f->head; *end != NULL && n < room;
			     end = &(*end)->next)
				n++;
			f->head = *end;
			*end = NULL;
			if (f->head == NULL)
				f->tail = &f->head;
			break;
		}
		if (open == 0 && f->stopping)
			break;
		pthread_cond_wait(&f->queued, &f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return jobs;
}

/* Runs JOBS through the chain into the open batch, which is committed
 * early when it has been open for BATCH_MS. */
static void
run_jobs(
    struct inproc *f, struct open_batch *ob, struct job *jobs, int batch_ms)
{
	struct job *j, *next;

	for (j = jobs; j != NULL; j = next) {
		next = j->next;
		j->next = NULL;
		if (ob->n > 0 && now_ms() - ob->opened >= batch_ms)
			commit_batch(f, ob);
		if (ob->n == 0)
			ob->opened = now_ms();
		ndjson_batch_add(ob->b, j->env, NULL, 0);
		j->env = jv_invalid();
		*ob->tail = j;
		ob->tail = &j->next;
		ob->n++;
	}
}

/* Lets the chain of ST leave its syncs to a syncer thread, if it can
 * and the thread starts. */
static void
start_syncer(struct inproc *f, struct stage *st)
{
	if (st == NULL || st->defer == NULL || st->sync_fds == NULL)
		return;
	if (pthread_create(&f->syncer, NULL, inproc_sync, f) != 0)
		return;
	st->defer(st->ctx);
	f->deferring = 1;
}

static void
stop_syncer(struct inproc *f)
{
	if (!f->deferring)
		return;
	pthread_mutex_lock(&f->lock);
	f->sync_stop = 1;
	pthread_cond_signal(&f->handed);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->syncer, NULL);
}

static void *
inproc_run(void *arg)
{
	struct inproc *f = arg;
	struct flowfile ff;
	struct chain *c = load_chain(f, &ff);
	struct stage *st = c != NULL ? chain_stage(c) : NULL;
	struct open_batch ob = {NULL, st, NULL, NULL, 0, 0};
	size_t max = INPROC_BATCH_MAX;
	int batch_ms = INPROC_BATCH_MS;
	struct job *jobs;

	ob.b = st != NULL ? ndjson_batch_new(st) : NULL;
	ob.tail = &ob.jobs;
	if (st != NULL && st->batch_max > 0)
		max = st->batch_max;
	if (st != NULL && st->batch_ms > 0)
		batch_ms = st->batch_ms;
	if (ob.b != NULL)
		start_syncer(f, st);
	if (ob.b != NULL && f->respond != RESPOND_OUTPUT)
		atomic_store(&f->reads, reads_merge(reads_new(), st->reads));
	for (;;) {
		jobs = take_jobs(f, ob.n, max - ob.n);
		if (jobs == NULL && ob.n == 0)
			break;
		if (jobs == NULL)
			commit_batch(f, &ob);
		else if (ob.b == NULL)
			jobs_finish(jobs, jobs, 500);
		else
			run_jobs(f, &ob, jobs, batch_ms);
	}
	stop_syncer(f);
	ndjson_batch_free(ob.b);
	if (c != NULL) {
		chain_free(c);
		flowfile_free(&ff);
	}
	return NULL;
}

struct inproc *
inproc_start(const char *file, enum listen_respond respond)
{
	struct inproc *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->file = strdup(file)) == NULL) {
		free(f);
		return NULL;
	}
	f->respond = respond;
	f->tail = &f->head;
	f->handoffs_tail = &f->handoffs;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->queued, NULL);
	pthread_cond_init(&f->handed, NULL);
	if (pthread_create(&f->thread, NULL, inproc_run, f) != 0) {
		free(f->file);
		free(f);
		return NULL;
	}
	msg_info("flow %s runs in-process", file);
	return f;
}

const struct reads *
inproc_reads(struct inproc *f)
{
	return atomic_load(&f->reads);
}

void
inproc_queue(struct inproc *f, jv env, inproc_done *done, void *arg)
{
	struct job *j = malloc(sizeof(*j));
	struct persist_answer a = {.status = 500};

	if (j == NULL) {
		jv_free(env);
		done(arg, &a);
		return;
	}
	*j = (struct job){env, done, arg, NULL};
	pthread_mutex_lock(&f->lock);
	if (f->stopped) {
		pthread_mutex_unlock(&f->lock);
		jv_free(env);
		free(j);
		a.status = 503;
		done(arg, &a);
		return;
	}
	*f->tail = j;
	f->tail = &j->next;
	pthread_cond_signal(&f->queued);
	pthread_mutex_unlock(&f->lock);
}

/* Answers what is queued, commits, and ends the flow's thread.  A job
 * queued later is answered 503 until inproc_free. */
void
inproc_stop(struct inproc *f)
{
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_signal(&f->queued);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_mutex_lock(&f->lock);
	f->stopped = 1;
	pthread_mutex_unlock(&f->lock);
}

void
inproc_free(struct inproc *f)
{
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->queued);
	pthread_cond_destroy(&f->handed);
	reads_free(atomic_load(&f->reads));
	free(f->file);
	free(f);
}
