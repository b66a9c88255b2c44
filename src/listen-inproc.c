/*
 * In-process flows of whook-listen --persistent: a flow file that names
 * whook-run is loaded once (flowfile_load, chain_build) and its stages run
 * on one thread of their own, through the same batch code as ndjson_run.
 * The thread takes every envelope waiting in its queue as one batch, up to
 * the chain's batch size and time, processes each, commits once, and only
 * then responds to each request with plain C data: a status and, for
 * --respond, the body text.  An envelope is handed over whole, and the
 * request thread keeps no reference to it, because libjq 1.6 counts jv
 * references without atomic operations.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "whook.h"

#define INPROC_BATCH_MAX 512
#define INPROC_BATCH_MS 100

struct job {
	jv env;
	inproc_done *done;
	void *arg;
	struct job *next;
};

struct inproc {
	char *file;
	enum listen_respond respond;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t queued;
	struct job *head, **tail;
	int stopping;
	int stopped; /* the thread has ended: new jobs get 503 */
};

/* The job that emit_answer responds to next, and its flow. */
struct cursor {
	struct inproc *f;
	struct job *job;
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

static void
emit_answer(void *arg, jv env, jv original, const char *text, size_t len)
{
	struct cursor *c = arg;
	struct persist_answer a;

	(void)text;
	(void)len;
	jv_free(original);
	if (c->job == NULL) {
		jv_free(env);
		return;
	}
	answer_of(env, c->f->respond, &a);
	c->job->done(c->job->arg, &a);
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

/* Takes the jobs waiting, at most MAX, or NULL once stopping and empty. */
static struct job *
take_jobs(struct inproc *f, size_t max)
{
	struct job *jobs, **end;
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	while (f->head == NULL && !f->stopping)
		pthread_cond_wait(&f->queued, &f->lock);
	jobs = f->head;
	for (end = &f->head; *end != NULL && n < max; end = &(*end)->next)
		n++;
	f->head = *end;
	*end = NULL;
	if (f->head == NULL)
		f->tail = &f->head;
	pthread_mutex_unlock(&f->lock);
	return jobs;
}

/* Runs one batch: each envelope through the chain, one commit, then the
 * answers in order. */
static void
run_batch(
    struct inproc *f, struct ndjson_batch *b, struct job *jobs, int batch_ms)
{
	struct cursor c = {f, jobs};
	long long opened = now_ms();
	struct job *j, *rest = NULL, **link = &jobs;

	for (j = jobs; j != NULL; link = &j->next, j = j->next) {
		if (j != jobs && now_ms() - opened >= batch_ms) {
			rest = j; /* the batch is due: the rest go next */
			*link = NULL;
			break;
		}
		ndjson_batch_add(b, j->env, NULL, 0);
		j->env = jv_invalid();
	}
	ndjson_batch_flush(b, emit_answer, &c);
	jobs_finish(jobs, c.job, 500);
	if (rest != NULL)
		run_batch(f, b, rest, batch_ms);
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

static void *
inproc_run(void *arg)
{
	struct inproc *f = arg;
	struct flowfile ff;
	struct chain *c = load_chain(f, &ff);
	struct stage *st = c != NULL ? chain_stage(c) : NULL;
	struct ndjson_batch *b = st != NULL ? ndjson_batch_new(st) : NULL;
	size_t max = INPROC_BATCH_MAX;
	struct job *jobs;

	if (st != NULL && st->batch_max > 0)
		max = st->batch_max;
	while ((jobs = take_jobs(f, max)) != NULL) {
		if (b == NULL) {
			jobs_finish(jobs, jobs, 500);
			continue;
		}
		run_batch(f, b, jobs,
		    st->batch_ms > 0 ? st->batch_ms : INPROC_BATCH_MS);
	}
	ndjson_batch_free(b);
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
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->queued, NULL);
	if (pthread_create(&f->thread, NULL, inproc_run, f) != 0) {
		free(f->file);
		free(f);
		return NULL;
	}
	msg_info("flow %s runs in-process", file);
	return f;
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
	free(f->file);
	free(f);
}
