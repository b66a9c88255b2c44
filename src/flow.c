/*
 * Running a flow for one envelope.  The request path names an executable
 * under the flows folder.  The flow runs in its own process group with the
 * envelope line on its stdin, its stdout is read up to a limit, and the
 * group is killed when it outlives its timeout.  What it wrote and how it
 * exited map onto an HTTP status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "whook.h"

extern char **environ;

/* Appends one decoded path component to OUT. Returns -1 for a component
 * that must not name a file: empty, hidden, "." or "..", or holding a
 * '/' or NUL once decoded. */
static int
append_component(const char *raw, size_t rawlen, char *out, size_t len)
{
	char *c = strndup(raw, rawlen);
	size_t n, used = strlen(out);
	int ok;

	if (c == NULL)
		return -1;
	n = MHD_http_unescape(c);
	ok = n > 0 && strlen(c) == n && c[0] != '.' && strchr(c, '/') == NULL &&
	     used + 1 + n < len;
	if (ok) {
		out[used] = '/';
		memcpy(out + used + 1, c, n + 1);
	}
	free(c);
	return ok ? 0 : -1;
}

int
flow_resolve(const char *dir, const char *path, char *out, size_t len)
{
	const char *p, *end;
	struct stat st;

	if (path[0] != '/' || snprintf(out, len, "%s", dir) >= (int)len)
		return -1;
	for (p = path + 1;; p = end + 1) {
		end = strchr(p, '/');
		if (end == NULL)
			end = p + strlen(p);
		if (append_component(p, end - p, out, len) == -1)
			return -1;
		if (*end == '\0')
			break;
	}
	if (stat(out, &st) == -1 || !S_ISREG(st.st_mode) ||
	    access(out, X_OK) == -1)
		return -1;
	return 0;
}

static int
spawn_attr(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	if (posix_spawnattr_init(attr) != 0)
		return -1;
	/* whook-listen blocks SIGTERM and ignores SIGPIPE, so a flow gets the
	 * defaults back, and a group of its own so a timeout kills all of it.
	 */
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP |
					   POSIX_SPAWN_SETSIGMASK |
					   POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(attr, 0);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &dfl);
	return 0;
}

int
flow_start(char *const argv[], int search, struct flow_proc *p, char *why,
    size_t whylen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int in[2], out[2], err;

	if (pipe2(in, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	err = spawn_attr(&attr);
	if (err == 0)
		err = (search ? posix_spawnp : posix_spawn)(
		    &p->pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
	if (err != 0) {
		snprintf(why, whylen, "%s: %s", argv[0], strerror(err));
		close(p->in);
		close(p->out);
		return -1;
	}
	fcntl(p->in, F_SETFL, O_NONBLOCK);
	return 0;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps up to MAX bytes of the flow's output; reads and drops the rest so
 * the flow never blocks on a full pipe. */
static int
read_output(int fd, struct flow_result *r, size_t max)
{
	char buf[65536], *grown;
	ssize_t n = read(fd, buf, sizeof(buf));
	size_t keep;

	if (n <= 0)
		return n == -1 && errno == EINTR ? 1 : 0;
	keep = r->len + n > max ? max - r->len : (size_t)n;
	if (keep < (size_t)n)
		r->truncated = 1;
	grown = realloc(r->output, r->len + keep + 1);
	if (grown == NULL) {
		r->truncated = 1;
		return 1;
	}
	r->output = grown;
	memcpy(r->output + r->len, buf, keep);
	r->len += keep;
	r->output[r->len] = '\0';
	return 1;
}

/* Reads what is in the flow's stdout pipe now, without waiting, once the
 * flow's main process has exited: a background process it left may keep
 * the pipe open for as long as it runs. */
static void
drain(struct flow_proc *p, struct flow_result *r, size_t max)
{
	fcntl(p->out, F_SETFL, O_NONBLOCK);
	while (read_output(p->out, r, max))
		continue;
	close(p->out);
	p->out = -1;
}

/* Writes up to the rest of LINE and then its newline.  Closes the pipe
 * when all is written or the flow closed its stdin. */
static void
feed(struct flow_proc *p, const char *line, size_t len, size_t *sent)
{
	ssize_t n;

	if (*sent < len)
		n = write(p->in, line + *sent, len - *sent);
	else
		n = write(p->in, "\n", 1);
	if (n > 0 && *sent + n > len) {
		close(p->in);
		p->in = -1;
	} else if (n > 0) {
		*sent += n;
	} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
		close(p->in);
		p->in = -1;
	}
}

/*
 * Feeds LINE and a newline to the flow while reading what it writes,
 * until its stdout closes, its main process has exited (*reaped set,
 * with its wait status in *wstatus), or DEADLINE (ms) passes.  Returns 0,
 * or -1 on timeout.  The poll wakes every EXIT_TICK_MS to look for the
 * exit, because a process the flow left running may hold stdout open.
 */
#define EXIT_TICK_MS 20
static int
exchange(struct flow_proc *p, const char *line, size_t len, long long deadline,
    size_t max, struct flow_result *r, int *wstatus, int *reaped)
{
	struct pollfd pfd[2];
	size_t sent = 0;
	int left;

	while (p->out != -1) {
		left = (int)(deadline - now_ms());
		if (left <= 0)
			return -1;
		pfd[0] = (struct pollfd){.fd = p->out, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = p->in, .events = POLLOUT};
		if (poll(pfd, p->in != -1 ? 2 : 1,
			left < EXIT_TICK_MS ? left : EXIT_TICK_MS) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pfd[0].revents != 0 && !read_output(p->out, r, max)) {
			close(p->out);
			p->out = -1;
		} else if (!*reaped && waitpid(p->pid, wstatus, WNOHANG) > 0) {
			*reaped = 1;
			drain(p, r, max);
		}
		if (p->in != -1 && pfd[1].revents != 0)
			feed(p, line, len, &sent);
	}
	return 0;
}

static void
set_exit(struct flow_result *r, int status)
{
	if (WIFSIGNALED(status)) {
		r->signaled = 1;
		r->exit = 128 + WTERMSIG(status);
	} else {
		r->exit = WEXITSTATUS(status);
	}
}

/* Waits for the flow until DEADLINE, then kills its process group. */
static void
reap(struct flow_proc *p, long long deadline, struct flow_result *r)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	int status = 0;
	pid_t got;

	while ((got = waitpid(p->pid, &status, WNOHANG)) == 0) {
		if (now_ms() >= deadline) {
			r->timed_out = 1;
			kill(-p->pid, SIGKILL);
			got = waitpid(p->pid, &status, 0);
			break;
		}
		nanosleep(&tick, NULL);
	}
	if (got == -1) {
		msg_error(
		    "flow %ld: wait failed: %s", (long)p->pid, strerror(errno));
		r->exit = 70;
		return;
	}
	set_exit(r, status);
}

void
flow_finish(struct flow_proc *p, const char *line, size_t len, unsigned timeout,
    size_t max_output, struct flow_result *r)
{
	long long deadline = now_ms() + (long long)timeout * 1000;
	int wstatus = 0, reaped = 0;

	memset(r, 0, sizeof(*r));
	if (exchange(p, line, len, deadline, max_output, r, &wstatus,
		&reaped) == -1) {
		r->timed_out = 1;
		kill(-p->pid, SIGKILL);
	}
	if (p->in != -1)
		close(p->in);
	if (p->out != -1)
		close(p->out);
	p->in = p->out = -1;
	if (reaped)
		set_exit(r, wstatus);
	else
		reap(p, deadline, r);
	if (r->timed_out)
		kill(-p->pid, SIGKILL); /* what the flow left running */
}

/* Finds the output line that is the envelope ID and returns it parsed, or
 * jv_invalid.  *start and *n give where the line is in the output. */
static jv
find_outcome(
    const struct flow_result *r, const char *id, size_t *start, size_t *n)
{
	const char *p = r->output, *end, *nl;
	char got[128];
	jv env;

	end = p + r->len;
	for (; p != NULL && p < end; p = nl != NULL ? nl + 1 : NULL) {
		nl = memchr(p, '\n', end - p);
		*start = p - r->output;
		*n = (nl != NULL ? nl : end) - p;
		env = json_parse(p, *n);
		if (jv_get_kind(env) == JV_KIND_OBJECT) {
			envelope_id(env, got, sizeof(got));
			if (strcmp(got, id) == 0)
				return env;
		}
		jv_free(env);
	}
	return jv_invalid();
}

/* Returns $error.status of ENV (borrowed) when it is an HTTP status. */
static int
error_status(jv env)
{
	jv err = jv_object_get(jv_copy(env), jv_string("$error")), st;
	double v = 0;

	if (jv_get_kind(err) == JV_KIND_OBJECT) {
		st = jv_object_get(jv_copy(err), jv_string("status"));
		if (jv_get_kind(st) == JV_KIND_NUMBER)
			v = jv_number_value(st);
		jv_free(st);
	}
	jv_free(err);
	return v >= 100 && v <= 599 ? (int)v : 0;
}

static char *
dup_text(jv text, size_t *len)
{
	char *s;

	*len = jv_string_length_bytes(jv_copy(text));
	s = malloc(*len + 1);
	if (s != NULL)
		memcpy(s, jv_string_value(text), *len + 1);
	jv_free(text);
	return s;
}

int
flow_status(const struct flow_result *r, const char *id,
    enum listen_respond respond, char **body, size_t *bodylen,
    const char **ctype)
{
	size_t start = 0, n = 0;
	jv env = r->len > 0 ? find_outcome(r, id, &start, &n) : jv_invalid();
	int status = jv_is_valid(env) ? error_status(env) : 0;
	jv last;

	*body = NULL;
	if (r->signaled)
		msg_warn("%s: flow killed by signal %d", id, r->exit - 128);
	else if (r->exit != 0 && r->exit != 1)
		msg_warn("%s: flow exited with status %d", id, r->exit);
	if (status == 0 && r->signaled)
		status = 500;
	if (status == 0)
		status = envelope_status_of_exit(r->exit);
	if (respond == RESPOND_LAST && jv_is_valid(env)) {
		last = jv_object_get(jv_copy(env), jv_string("$last"));
		if (!jv_is_valid(last)) {
			jv_free(last);
			last = jv_null();
		}
		*body = dup_text(json_dump(last), bodylen);
		*ctype = "application/json";
	} else if (respond == RESPOND_OUTPUT && r->len > 0) {
		if (!jv_is_valid(env)) {
			start = 0;
			n = strcspn(r->output, "\n");
		}
		*body = strndup(r->output + start, n);
		*bodylen = n;
		*ctype = jv_is_valid(env) ? "application/json" : "text/plain";
	}
	jv_free(env);
	return status;
}
