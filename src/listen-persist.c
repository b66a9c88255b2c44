/*
 * whook-listen --persistent: each flow is started once, on first use, and
 * kept running.  A request's envelope goes down the flow's standard input
 * as one NDJSON line, and the request waits until the line whose
 * $trigger.id is its id comes back on the flow's standard output (every
 * whook program writes one line for each line under WHOOK_OUTCOMES=1).
 * A flow file that names whook-run runs in this process instead
 * (listen-inproc.c).  Past --max-inflight a request is answered 503 at
 * once; a flow that does not answer within --timeout is killed (504 for
 * the request, 503 for the others it held) and started again on the
 * next request, as is a flow that exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "whook.h"

/* A request waiting for its outcome, with a lock of its own so that
 * answering one request contends with no other.  It is freed by the
 * request thread, or by the flow's thread when the request gave up
 * waiting (abandoned). */
struct waiter {
	char id[TRIGGER_ID_LEN + 1];
	unsigned long gen; /* the flow process it was written to */
	struct pflow *flow;
	int done, abandoned;
	struct persist_answer answer;
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	struct waiter *next;
};

struct pflow {
	struct persist *pool;
	char *file; /* NULL for the -- command */
	struct inproc *inproc;
	int inproc_checked;
	pthread_mutex_t write_lock; /* the only lock held while writing */
	pid_t pid;
	int in; /* its stdin, -1 when closed */
	int running;
	unsigned long gen;	/* counts the processes started */
	struct waiter *waiters; /* of external flows */
	atomic_size_t inflight;
	pthread_mutex_t relay_lock;
	struct relay *oldest, *newest; /* in-process, oldest first */
	struct pflow *next;
};

struct persist {
	const struct listen_config *cfg;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct pflow *flows;
	int readers; /* reader threads still running */
	atomic_int stopping;
	pthread_t watchdog; /* sends 504 for a hung in-process flow */
	int watching, unwatch;
};

/* The arguments of the reader thread of one flow process. */
struct reader_arg {
	struct pflow *flow;
	unsigned long gen;
	pid_t pid;
	int out;
};

static long long
deadline_after(unsigned seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	       (long long)seconds * 1000;
}

static long long
now_ms(void)
{
	return deadline_after(0);
}

static struct timespec
realtime_of(long long deadline)
{
	struct timespec ts;
	long long left = deadline - now_ms();

	clock_gettime(CLOCK_REALTIME, &ts);
	if (left < 0)
		left = 0;
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

struct persist *
persist_new(const struct listen_config *cfg)
{
	struct persist *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->cfg = cfg;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	return p;
}

/* Finds the flow of FILE (NULL: the command), under the lock, or NULL. */
static struct pflow *
find_flow(struct persist *p, const char *file)
{
	struct pflow *f;

	for (f = p->flows; f != NULL; f = f->next)
		if ((f->file == NULL && file == NULL) ||
		    (f->file != NULL && file != NULL &&
			strcmp(f->file, file) == 0))
			return f;
	return NULL;
}

/* Finds or adds the flow of FILE (NULL: the command), under the lock. */
static struct pflow *
flow_of(struct persist *p, const char *file)
{
	struct pflow *f = find_flow(p, file);

	if (f != NULL)
		return f;
	f = calloc(1, sizeof(*f));
	if (f == NULL || (file != NULL && (f->file = strdup(file)) == NULL)) {
		free(f);
		return NULL;
	}
	f->pool = p;
	f->in = -1;
	pthread_mutex_init(&f->write_lock, NULL);
	pthread_mutex_init(&f->relay_lock, NULL);
	f->next = p->flows;
	p->flows = f;
	return f;
}

static void
waiter_free(struct waiter *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mutex);
	free(w);
}

/* Sets the answer of W and wakes its request, or frees W when the request
 * no longer waits. */
static void
waiter_finish(struct waiter *w, const struct persist_answer *a)
{
	pthread_mutex_lock(&w->mutex);
	if (w->abandoned) {
		pthread_mutex_unlock(&w->mutex);
		free(a->body);
		jv_free(a->env);
		waiter_free(w);
		return;
	}
	w->answer = *a;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mutex);
}

/* Takes W out of F's list, under the pool lock.  Returns whether it was
 * there, so that no other thread answers it. */
static int
unlink_waiter(struct pflow *f, struct waiter *w)
{
	struct waiter **pp;

	for (pp = &f->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			f->inflight--;
			return 1;
		}
	return 0;
}

/* Hands outcome LINE to the request waiting for it, under the lock. */
static void
deliver(struct pflow *f, unsigned long gen, char *line, size_t len)
{
	const struct listen_config *cfg = f->pool->cfg;
	struct flow_result r = {.output = line, .len = len};
	struct persist_answer a = {0};
	struct waiter *w;
	char id[128];
	jv env = json_parse(line, len);

	id[0] = '\0';
	if (jv_get_kind(env) == JV_KIND_OBJECT)
		envelope_id(env, id, sizeof(id));
	jv_free(env);
	for (w = f->waiters; w != NULL; w = w->next)
		if (w->gen == gen && strcmp(w->id, id) == 0)
			break;
	if (w == NULL) {
		msg_warn("%s: flow output matches no waiting request: %s",
		    f->file ? f->file : f->pool->cfg->command[0],
		    id[0] ? id : "no $trigger.id");
		return;
	}
	a.status =
	    flow_status(&r, w->id, cfg->respond, &a.body, &a.len, &a.ctype);
	a.outcome = 1;
	unlink_waiter(f, w);
	waiter_finish(w, &a);
}

/* Answers every request still waiting on process GEN: 503. */
static void
fail_waiters(struct pflow *f, unsigned long gen)
{
	struct persist_answer a = {.status = 503};
	struct waiter **pp = &f->waiters, *w;

	while ((w = *pp) != NULL) {
		if (w->gen != gen) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		f->inflight--;
		waiter_finish(w, &a);
	}
}

static void
log_exit(const struct pflow *f, pid_t pid, int status)
{
	const char *name = f->file ? f->file : f->pool->cfg->command[0];

	if (WIFSIGNALED(status))
		msg_warn("flow %s (pid %ld) killed by signal %d", name,
		    (long)pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0 || !f->pool->stopping)
		msg_warn("flow %s (pid %ld) exited with status %d", name,
		    (long)pid, WEXITSTATUS(status));
}

#define ORPHAN_GRACE_MS 2000

/*
 * Waits until the flow's output can be read.  A flow's own process can
 * end while others of its group hold its output open, as the stages of a
 * shell pipeline do when its sh is killed.  The group then gets SIGTERM,
 * and SIGKILL ORPHAN_GRACE_MS later, so that its output ends and the flow
 * is started again.  PIDFD is the process's, or -1 where the kernel has
 * no pidfd_open(2); *ENDED is set once it has ended.
 */
static void
wait_output(const struct reader_arg *ra, int pidfd, int *ended)
{
	struct pollfd pfd[2] = {{ra->out, POLLIN, 0}, {pidfd, POLLIN, 0}};
	int timeout = -1, sig = SIGTERM, n;

	for (;;) {
		n = poll(pfd, *ended || pidfd < 0 ? 1 : 2, timeout);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			return;
		if (ra->flow->pool->stopping && *ended)
			return; /* the stop waits for the group itself */
		if (!*ended && !(pfd[1].revents & POLLIN))
			continue;
		*ended = 1;
		if (sig == 0 || ra->flow->pool->stopping)
			return;
		kill(-ra->pid, sig);
		sig = sig == SIGTERM ? SIGKILL : 0;
		timeout = ORPHAN_GRACE_MS;
	}
}

/* Reads outcome lines until the flow closes its stdout, then answers
 * what it still held 503 and reaps it. */
static void *
reader_run(void *arg)
{
	struct reader_arg ra = *(struct reader_arg *)arg;
	struct pflow *f = ra.flow;
	char *buf = NULL, *nl, *grown;
	size_t len = 0, cap = 0, start;
	ssize_t n;
	int status = 0, ended = 0;
	int pidfd = (int)syscall(SYS_pidfd_open, ra.pid, 0);

	free(arg);
	for (;;) {
		wait_output(&ra, pidfd, &ended);
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			grown = realloc(buf, cap);
			if (grown == NULL)
				break;
			buf = grown;
		}
		n = read(ra.out, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		pthread_mutex_lock(&f->pool->lock);
		for (start = 0;
		     (nl = memchr(buf + start, '\n', len - start)) != NULL;
		     start = nl - buf + 1) {
			*nl = '\0';
			deliver(f, ra.gen, buf + start, nl - (buf + start));
		}
		pthread_mutex_unlock(&f->pool->lock);
		memmove(buf, buf + start, len - start);
		len -= start;
	}
	free(buf);
	close(ra.out);
	if (pidfd >= 0)
		close(pidfd);
	pthread_mutex_lock(&f->pool->lock);
	if (f->gen == ra.gen)
		f->running = 0;
	fail_waiters(f, ra.gen);
	pthread_mutex_unlock(&f->pool->lock);
	if (!f->pool->stopping)
		kill(-ra.pid, SIGTERM); /* what is left of its process group */
	while (waitpid(ra.pid, &status, 0) == -1 && errno == EINTR)
		;
	log_exit(f, ra.pid, status);
	pthread_mutex_lock(&f->pool->lock);
	f->pool->readers--;
	pthread_cond_broadcast(&f->pool->changed);
	pthread_mutex_unlock(&f->pool->lock);
	return NULL;
}

/* Starts the flow's process and its reader thread, with the write lock
 * and the pool lock held.  Returns 0, or -1 after a message. */
static int
start_process(struct pflow *f)
{
	const struct listen_config *cfg = f->pool->cfg;
	char *argv[2] = {f->file, NULL}, why[512];
	struct reader_arg *ra = malloc(sizeof(*ra));
	struct flow_proc proc;
	pthread_t t;

	if (ra == NULL)
		return -1;
	if (flow_start(f->file ? argv : cfg->command, f->file == NULL, &proc,
		why, sizeof(why)) == -1) {
		msg_error("flow could not start: %s", why);
		free(ra);
		return -1;
	}
	/* Writes block, bounded by poll, so that a line is written whole. */
	fcntl(proc.in, F_SETFL, fcntl(proc.in, F_GETFL) & ~O_NONBLOCK);
	if (f->in != -1)
		close(f->in);
	f->in = proc.in;
	f->pid = proc.pid;
	f->gen++;
	f->running = 1;
	*ra = (struct reader_arg){f, f->gen, proc.pid, proc.out};
	f->pool->readers++;
	if (pthread_create(&t, NULL, reader_run, ra) != 0) {
		f->pool->readers--;
		kill(-proc.pid, SIGKILL);
		waitpid(proc.pid, NULL, 0);
		close(proc.out);
		free(ra);
		f->running = 0;
		return -1;
	}
	pthread_detach(t);
	msg_info("flow %s started, pid %ld",
	    f->file ? f->file : cfg->command[0], (long)proc.pid);
	return 0;
}

/* Writes LINE and a newline to FD by DEADLINE.  Returns 0, or -1. */
static int
write_line(int fd, const char *line, size_t len, long long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	size_t sent = 0;
	ssize_t n;
	int left;

	while (sent < len + 1) {
		left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) == 0)
			return -1;
		if (sent < len)
			n = write(fd, line + sent, len - sent);
		else
			n = write(fd, "\n", 1);
		if (n == -1 && errno != EINTR && errno != EAGAIN)
			return -1;
		if (n > 0)
			sent += n;
	}
	return 0;
}

static struct waiter *
waiter_new(const char *id)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	snprintf(w->id, sizeof(w->id), "%s", id);
	pthread_mutex_init(&w->mutex, NULL);
	pthread_cond_init(&w->cond, NULL);
	return w;
}

/* Waits for W's answer until DEADLINE.  Returns 0 with *A set and W
 * freed, or -1 on time-out with W left as it is. */
static int
waiter_wait(struct waiter *w, long long deadline, struct persist_answer *a)
{
	struct timespec until = realtime_of(deadline);
	int done;

	pthread_mutex_lock(&w->mutex);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->mutex, &until) ==
		    ETIMEDOUT)
			break;
	done = w->done;
	pthread_mutex_unlock(&w->mutex);
	if (!done)
		return -1;
	*a = w->answer;
	waiter_free(w);
	return 0;
}

/* Admits one more request to F: 0, or the status to answer with. */
static int
admit(struct persist *p, struct pflow *f, struct persist_answer *a)
{
	if (atomic_load(&p->stopping))
		return a->status = 503;
	if (atomic_fetch_add(&f->inflight, 1) >= p->cfg->max_inflight) {
		f->inflight--;
		a->busy = 1;
		return a->status = 503;
	}
	return 0;
}

/* Kills process GEN of F after a request timed out on it, so that the
 * next request starts it anew; its reader answers the others 503. */
static void
kill_hung(struct pflow *f, unsigned long gen)
{
	const char *name = f->file ? f->file : f->pool->cfg->command[0];

	if (!f->running || f->gen != gen)
		return;
	msg_error("flow %s (pid %ld) gave no outcome within %u s: killed", name,
	    (long)f->pid, f->pool->cfg->timeout);
	kill(-f->pid, SIGKILL);
}

/* Runs LINE through the external flow F; fills *A. */
static void
submit_external(struct pflow *f, const char *id, const char *line, size_t len,
    struct persist_answer *a)
{
	struct persist *p = f->pool;
	long long deadline = deadline_after(p->cfg->timeout);
	struct timespec until = realtime_of(deadline);
	struct waiter *w = waiter_new(id);
	unsigned long gen;
	int ok;

	if (w == NULL) {
		a->status = 500;
		return;
	}
	if (pthread_mutex_timedlock(&f->write_lock, &until) != 0) {
		waiter_free(w);
		a->status = 504;
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (admit(p, f, a) != 0 || (!f->running && start_process(f) == -1)) {
		if (a->status == 0) {
			f->inflight--;
			a->status = 500;
		}
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&f->write_lock);
		waiter_free(w);
		return;
	}
	gen = w->gen = f->gen;
	w->next = f->waiters;
	f->waiters = w;
	pthread_mutex_unlock(&p->lock);
	ok = write_line(f->in, line, len, deadline) == 0;
	pthread_mutex_unlock(&f->write_lock);
	if (ok && waiter_wait(w, deadline, a) == 0)
		return;
	/* Unless the reader answered W meanwhile, it is ours to free.  A
	 * write that failed before the deadline met a flow that had exited
	 * (EPIPE): the reader restarts it, so the answer is 503, not 504. */
	pthread_mutex_lock(&p->lock);
	if (unlink_waiter(f, w)) {
		waiter_free(w);
		if (!ok && now_ms() < deadline) {
			a->status = 503;
		} else {
			kill_hung(f, gen);
			a->status = 504;
		}
	} else {
		*a = w->answer;
		waiter_free(w);
	}
	pthread_mutex_unlock(&p->lock);
}

/* Called by the in-process flow's thread with each answer. */
static void
inproc_answered(void *arg, const struct persist_answer *a)
{
	struct waiter *w = arg;

	w->flow->inflight--;
	waiter_finish(w, a);
}

/* Queues ENV for the in-process flow F; fills *A. */
static void
submit_inproc(struct pflow *f, const char *id, jv env, struct persist_answer *a)
{
	struct persist *p = f->pool;
	long long deadline = deadline_after(p->cfg->timeout);
	struct waiter *w = waiter_new(id);

	if (w == NULL) {
		jv_free(env);
		a->status = 500;
		return;
	}
	w->flow = f;
	if (admit(p, f, a) != 0) {
		jv_free(env);
		waiter_free(w);
		return;
	}
	inproc_queue(f->inproc, env, inproc_answered, w);
	if (waiter_wait(w, deadline, a) == 0)
		return;
	pthread_mutex_lock(&w->mutex);
	if (w->done) { /* answered just at the deadline */
		pthread_mutex_unlock(&w->mutex);
		*a = w->answer;
		waiter_free(w);
		return;
	}
	w->abandoned = 1; /* the flow's thread frees it */
	pthread_mutex_unlock(&w->mutex);
	msg_error("%s: in-process flow %s gave no outcome within %u s", id,
	    f->file, p->cfg->timeout);
	a->status = 504;
}

static void *watchdog_run(void *arg);

/* Starts the in-process flow of F on first use, when its file names
 * whook-run, under the pool lock.  Returns whether F is in-process. */
static int
check_inproc(struct pflow *f)
{
	struct persist *p = f->pool;

	if (!f->inproc_checked && f->file != NULL &&
	    flowfile_is_runnable(f->file)) {
		f->inproc = inproc_start(f->file, p->cfg->respond);
		if (f->inproc == NULL)
			msg_error("%s: in-process flow could not start: "
				  "run as a process",
			    f->file);
	}
	f->inproc_checked = 1;
	if (f->inproc != NULL && !p->watching &&
	    pthread_create(&p->watchdog, NULL, watchdog_run, p) == 0)
		p->watching = 1;
	return f->inproc != NULL;
}

void
persist_submit(struct persist *p, const char *file, const char *id, jv env,
    const char *line, size_t len, struct persist_answer *a)
{
	struct pflow *f;
	jv text;
	int inproc;

	memset(a, 0, sizeof(*a));
	pthread_mutex_lock(&p->lock);
	f = flow_of(p, file);
	inproc = f != NULL && check_inproc(f);
	pthread_mutex_unlock(&p->lock);
	if (f == NULL) {
		jv_free(env);
		a->status = 500;
		return;
	}
	if (inproc) {
		submit_inproc(f, id, env, a);
		return;
	}
	if (line != NULL) {
		jv_free(env);
		submit_external(f, id, line, len, a);
		return;
	}
	text = json_dump(env);
	submit_external(f, id, jv_string_value(text),
	    jv_string_length_bytes(jv_copy(text)), a);
	jv_free(text);
}

/* A request whose result persist_submit_async returns later to DONE(ARG).
 * For an external flow it keeps copies of what the thread that waits for
 * the outcome needs. */
struct relay {
	struct persist *pool;
	struct pflow *flow;
	inproc_done *done;
	void *arg;
	char *file, *line;
	size_t len;
	char id[TRIGGER_ID_LEN + 1];
	jv env;
	long long deadline;
	atomic_int claimed; /* answered, by the flow or the watchdog */
	int linked;
	struct relay *older, *newer;
};

/* Adds R as the newest of F's in-process requests. */
static void
relay_link(struct pflow *f, struct relay *r)
{
	r->deadline = deadline_after(f->pool->cfg->timeout);
	pthread_mutex_lock(&f->relay_lock);
	r->older = f->newest;
	r->newer = NULL;
	if (f->newest != NULL)
		f->newest->newer = r;
	else
		f->oldest = r;
	f->newest = r;
	r->linked = 1;
	pthread_mutex_unlock(&f->relay_lock);
}

/* Takes R out of F's list, with the relay lock held. */
static void
relay_unlink_locked(struct pflow *f, struct relay *r)
{
	if (!r->linked)
		return;
	if (r->older != NULL)
		r->older->newer = r->newer;
	else
		f->oldest = r->newer;
	if (r->newer != NULL)
		r->newer->older = r->older;
	else
		f->newest = r->older;
	r->linked = 0;
}

static void
relay_free(struct relay *r)
{
	free(r->file);
	free(r->line);
	free(r);
}

/* Called by the in-process flow's thread with each answer. */
static void
relay_answered(void *arg, const struct persist_answer *a)
{
	struct relay *r = arg;
	struct pflow *f = r->flow;

	f->inflight--;
	pthread_mutex_lock(&f->relay_lock);
	relay_unlink_locked(f, r);
	pthread_mutex_unlock(&f->relay_lock);
	if (atomic_exchange(&r->claimed, 1) == 0)
		r->done(r->arg, a);
	else { /* the watchdog returned 504 before */
		free(a->body);
		jv_free(a->env);
	}
	relay_free(r);
}

/* Claims the requests of F past their deadline, into *LIST, under the
 * pool lock.  The flow's thread still frees each once it answers. */
static void
expire(struct pflow *f, long long now, struct relay **list)
{
	struct relay *r;

	pthread_mutex_lock(&f->relay_lock);
	while ((r = f->oldest) != NULL && r->deadline <= now) {
		relay_unlink_locked(f, r);
		if (atomic_exchange(&r->claimed, 1) == 0) {
			r->newer = *list;
			*list = r;
		}
	}
	pthread_mutex_unlock(&f->relay_lock);
}

/* Returns 504, checked ten times a second, to the in-process requests
 * whose flow gave no outcome within --timeout, as a waiting request gets. */
static void *
watchdog_run(void *arg)
{
	struct persist *p = arg;
	struct persist_answer a = {.status = 504};
	struct timespec until;
	struct relay *list, *r;
	struct pflow *f;

	pthread_mutex_lock(&p->lock);
	while (!p->unwatch) {
		until = realtime_of(now_ms() + 100);
		pthread_cond_timedwait(&p->changed, &p->lock, &until);
		list = NULL;
		for (f = p->flows; f != NULL; f = f->next)
			if (f->inproc != NULL)
				expire(f, now_ms(), &list);
		pthread_mutex_unlock(&p->lock);
		for (r = list; r != NULL; r = list) {
			list = r->newer;
			msg_error("%s: in-process flow %s gave no outcome "
				  "within %u s",
			    r->id, r->flow->file, p->cfg->timeout);
			r->done(r->arg, &a);
		}
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Waits for an external flow's outcome on a thread of its own, so that
 * the HTTP threads go on serving other connections meanwhile. */
static void *
relay_run(void *arg)
{
	struct relay *r = arg;
	struct persist_answer a;

	persist_submit(r->pool, r->file, r->id, r->env, r->line, r->len, &a);
	r->done(r->arg, &a);
	relay_free(r);
	return NULL;
}

/* Queues ENV for the in-process flow F.  Returns 0, or -1 with *A. */
static int
relay_inproc(struct pflow *f, struct relay *r, jv env, struct persist_answer *a)
{
	if (admit(f->pool, f, a) != 0) {
		jv_free(env);
		return -1;
	}
	r->flow = f;
	relay_link(f, r);
	inproc_queue(f->inproc, env, relay_answered, r);
	return 0;
}

/* Starts the thread that submits ENV or LINE to an external flow.
 * Returns 0, or -1 with *A. */
static int
relay_external(struct relay *r, const char *file, jv env, const char *line,
    size_t len, struct persist_answer *a)
{
	pthread_t t;

	r->env = env;
	r->len = len;
	if ((file != NULL && (r->file = strdup(file)) == NULL) ||
	    (line != NULL && (r->line = malloc(len + 1)) == NULL))
		goto fail;
	if (line != NULL)
		memcpy(r->line, line, len + 1);
	if (pthread_create(&t, NULL, relay_run, r) != 0)
		goto fail;
	pthread_detach(t);
	return 0;
fail:
	jv_free(env);
	free(r->file);
	free(r->line);
	r->file = r->line = NULL;
	a->status = 500;
	return -1;
}

/* Returns what the in-process flow FILE reads, or NULL when it is not
 * known or may be all of the envelope.  The set lasts until persist_free.
 */
const struct reads *
persist_reads(struct persist *p, const char *file)
{
	const struct reads *reads = NULL;
	struct pflow *f;

	if (file == NULL)
		return NULL;
	pthread_mutex_lock(&p->lock);
	f = find_flow(p, file);
	if (f != NULL && f->inproc != NULL)
		reads = inproc_reads(f->inproc);
	pthread_mutex_unlock(&p->lock);
	return reads;
}

void
persist_submit_async(struct persist *p, const char *file, const char *id,
    jv env, const char *line, size_t len, inproc_done *done, void *arg)
{
	struct persist_answer a = {.status = 500};
	struct relay *r = calloc(1, sizeof(*r));
	struct pflow *f = NULL;
	int inproc = 0, queued;

	if (r != NULL) {
		*r = (struct relay){.pool = p, .done = done, .arg = arg};
		snprintf(r->id, sizeof(r->id), "%s", id);
		pthread_mutex_lock(&p->lock);
		f = flow_of(p, file);
		inproc = f != NULL && check_inproc(f);
		pthread_mutex_unlock(&p->lock);
	}
	if (f == NULL) {
		jv_free(env);
		queued = -1;
	} else if (inproc) {
		queued = relay_inproc(f, r, env, &a);
	} else {
		queued = relay_external(r, file, env, line, len, &a);
	}
	if (queued == 0)
		return;
	free(r);
	done(arg, &a);
}

/* Closes the stdin of every flow process so it flushes and exits, and
 * stops the in-process flows after their last commit. */
static void
close_inputs(struct persist *p)
{
	struct pflow *f;

	for (f = p->flows; f != NULL; f = f->next) {
		if (f->inproc != NULL)
			inproc_stop(f->inproc);
		pthread_mutex_lock(&f->write_lock);
		if (f->in != -1)
			close(f->in);
		f->in = -1;
		pthread_mutex_unlock(&f->write_lock);
	}
}

void
persist_stop(struct persist *p, unsigned grace)
{
	struct timespec until = realtime_of(deadline_after(grace));
	struct pflow *f;
	int busy = 1;

	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_mutex_unlock(&p->lock);
	close_inputs(p);
	pthread_mutex_lock(&p->lock);
	p->unwatch = 1;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	if (p->watching)
		pthread_join(p->watchdog, NULL);
	p->watching = 0;
	pthread_mutex_lock(&p->lock);
	while (p->readers > 0 && busy)
		busy =
		    pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0;
	for (f = p->flows; f != NULL && p->readers > 0; f = f->next)
		if (f->running) {
			msg_warn("flow %s (pid %ld) still running after %u s: "
				 "killed",
			    f->file ? f->file : p->cfg->command[0],
			    (long)f->pid, grace);
			kill(-f->pid, SIGKILL);
		}
	until = realtime_of(deadline_after(1));
	while (p->readers > 0 &&
	       pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0)
		;
	pthread_mutex_unlock(&p->lock);
}

/* Frees P after persist_stop, once no request thread is left, unless a
 * flow process outlived even its SIGKILL. */
void
persist_free(struct persist *p)
{
	struct pflow *f, *next;

	if (p->readers > 0)
		return;
	for (f = p->flows; f != NULL; f = next) {
		next = f->next;
		if (f->inproc != NULL)
			inproc_free(f->inproc);
		pthread_mutex_destroy(&f->write_lock);
		pthread_mutex_destroy(&f->relay_lock);
		free(f->file);
		free(f);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->changed);
	free(p);
}
