/*
 * whook-listen: HTTP in, envelopes out.  Serves the connection on stdin
 * (inetd nowait, systemd Accept=yes), a socket passed in LISTEN_FDS
 * (systemd Accept=no) or its own --listen socket.  Each request becomes
 * one envelope, written to stdout or fed to a flow, and gets a response
 * whose status the flow's outcome decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "whook.h"

#define SD_LISTEN_FDS_START 3

enum {
	OPT_MAX_HEADER = 256,
	OPT_READ_TIMEOUT,
	OPT_LOG,
	OPT_LOG_REDACT,
	OPT_ACCEPT_ID,
	OPT_PERSISTENT,
	OPT_MAX_INFLIGHT,
	OPT_STOP_TIMEOUT,
	OPT_VERSION
};

static const struct option options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"flows", required_argument, NULL, 'f'},
    {"method", required_argument, NULL, 'm'},
    {"max-body", required_argument, NULL, 'b'},
    {"max-header", required_argument, NULL, OPT_MAX_HEADER},
    {"read-timeout", required_argument, NULL, OPT_READ_TIMEOUT},
    {"log", required_argument, NULL, OPT_LOG},
    {"receive-log", required_argument, NULL, OPT_LOG}, /* the old name */
    {"log-redact", required_argument, NULL, OPT_LOG_REDACT},
    {"accept-id", no_argument, NULL, OPT_ACCEPT_ID},
    {"persistent", no_argument, NULL, OPT_PERSISTENT},
    {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
    {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
    {"timeout", required_argument, NULL, 't'},
    {"async", no_argument, NULL, 'a'},
    {"respond", required_argument, NULL, 'r'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	static const char *const lines[] = {
	    "usage: whook-listen [-a] [-b bytes] [-f dir] [-l [host:]port]",
	    "           [-m method[,method...]] [-q] [-r status|last|output]",
	    "           [-t seconds] [--accept-id] [--log file]",
	    "           [--log-redact header] [--max-header bytes]",
	    "           [--max-inflight n] [--persistent]",
	    "           [--read-timeout seconds] [--stop-timeout seconds]",
	    "           [-- command [arg ...]]",
	    "       whook-listen -h | --version",
	    "  -l, --listen [HOST:]PORT  listen there (host 127.0.0.1)",
	    "  -f, --flows DIR           run the flow the path names in DIR",
	    "  -m, --method M[,M...]     methods allowed (POST)",
	    "  -b, --max-body BYTES      maximum body, k or M suffix (25M)",
	    "      --max-header BYTES    memory for the header block (32k)",
	    "      --read-timeout SECS   close an idle connection (10)",
	    "      --log FILE            append each envelope, synced, first",
	    "      --log-redact HEADER   leave HEADER out of the log copy",
	    "      --accept-id           take the id from Whook-Envelope-Id",
	    "  -t, --timeout SECS        time a flow may run (30)",
	    "      --persistent          start each flow once and keep it",
	    "      --max-inflight N      requests a persistent flow holds "
	    "(256)",
	    "      --stop-timeout SECS   time SIGTERM waits for requests (10)",
	    "  -a, --async               answer 202 once the flow started",
	    "  -q, --quiet               write only warnings and errors",
	    "  -r, --respond WHAT        body: status, last or output",
	    "  -h, --help                print this help and exit",
	    "      --version             print the version and exit",
	};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		fprintf(f, "%s\n", lines[i]);
}

static int
misuse(const char *what, const char *arg)
{
	if (arg != NULL)
		msg_error("%s: %s", what, arg);
	else
		msg_error("%s", what);
	usage(stderr);
	return EX_USAGE;
}

/* Parses a decimal count with an optional k or M suffix (1024-based). */
static int
parse_size(const char *s, unsigned long long *v, int suffix)
{
	char *end;
	unsigned long long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (suffix && (*end == 'k' || *end == 'K' || *end == 'M') &&
	    n > ULLONG_MAX / (1024 * 1024))
		return -1;
	if (suffix && (*end == 'k' || *end == 'K')) {
		n *= 1024;
		end++;
	} else if (suffix && *end == 'M') {
		n *= 1024 * 1024;
		end++;
	}
	if (*end != '\0')
		return -1;
	*v = n;
	return 0;
}

/* Returns whether S is an HTTP token (RFC 9110 section 5.6.2), as a
 * method must be, of at most 15 bytes: the request keeps no more of its
 * method for $trigger.method and the log. */
static int
is_token(const char *s)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz";

	return s[0] != '\0' && strlen(s) <= 15 && s[strspn(s, tchar)] == '\0';
}

/* Adds each method of a comma list.  Returns 0, -1 for an empty or
 * invalid method, or -2 past LISTEN_METHODS_MAX methods. */
static int
add_methods(struct listen_config *cfg, char *list)
{
	char *m;

	while ((m = strsep(&list, ",")) != NULL) {
		if (!is_token(m))
			return -1;
		if (cfg->nmethods == LISTEN_METHODS_MAX)
			return -2;
		cfg->methods[cfg->nmethods++] = m;
	}
	return 0;
}

/* Adds a header name, lowercased as $trigger.headers has it, to the
 * names left out of the log.  The array lives until the process exits. */
static int
add_redact(struct listen_config *cfg, const char *name)
{
	const char **grown;
	char *lower;
	size_t i;

	if (name[0] == '\0' || name[strcspn(name, ": \t\r\n")] != '\0')
		return -1;
	grown = realloc(cfg->redact, (cfg->nredact + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	cfg->redact = grown;
	lower = strdup(name);
	if (lower == NULL)
		return -1;
	for (i = 0; lower[i] != '\0'; i++)
		if (lower[i] >= 'A' && lower[i] <= 'Z')
			lower[i] += 'a' - 'A';
	cfg->redact[cfg->nredact++] = lower;
	return 0;
}

static void
free_redact(struct listen_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nredact; i++)
		free((char *)cfg->redact[i]);
	free(cfg->redact);
}

static int
method_option(struct listen_config *cfg, char *list)
{
	char *copy = strdup(list);
	int err = add_methods(cfg, list);

	if (err == -1)
		err = misuse("--method: invalid method: expected tokens such "
			     "as POST,PUT",
		    copy != NULL ? copy : "");
	else if (err == -2)
		err = misuse("--method: more than 16 methods", NULL);
	else
		err = STAGE_READY;
	free(copy);
	return err;
}

static int
parse_respond(const char *s, enum listen_respond *r)
{
	if (strcmp(s, "status") == 0)
		*r = RESPOND_STATUS;
	else if (strcmp(s, "last") == 0)
		*r = RESPOND_LAST;
	else if (strcmp(s, "output") == 0)
		*r = RESPOND_OUTPUT;
	else
		return -1;
	return 0;
}

/* Returns whether a --listen [HOST:]PORT names a numeric address, and a
 * port of digits from 1 to 65535: getaddrinfo(3) takes 0, for which the
 * kernel picks a port, and does not reject a larger number. */
static int
listen_spec_valid(const char *spec)
{
	const char *colon = strrchr(spec, ':');
	const char *port = colon != NULL ? colon + 1 : spec;
	size_t n = strlen(port), hostlen = colon != NULL ? colon - spec : 0;
	unsigned char addr[16];
	char host[64];

	if (n == 0 || n > 5 || port[strspn(port, "0123456789")] != '\0' ||
	    atol(port) < 1 || atol(port) > 65535)
		return 0;
	if (colon == NULL)
		return 1;
	if (hostlen >= 2 && spec[0] == '[' && spec[hostlen - 1] == ']') {
		snprintf(
		    host, sizeof(host), "%.*s", (int)(hostlen - 2), spec + 1);
		return hostlen - 2 < sizeof(host) &&
		       inet_pton(AF_INET6, host, addr) == 1;
	}
	snprintf(host, sizeof(host), "%.*s", (int)hostlen, spec);
	return hostlen < sizeof(host) &&
	       (inet_pton(AF_INET, host, addr) == 1 ||
		   inet_pton(AF_INET6, host, addr) == 1);
}

/* Handles one option.  Returns STAGE_READY to go on, or an exit status. */
static int
option(struct listen_config *cfg, int c, const char **listen, const char **log)
{
	unsigned long long v;

	switch (c) {
	case 'l':
		if (!listen_spec_valid(optarg))
			return misuse(
			    "--listen: expected [HOST:]PORT, a numeric "
			    "address and a port from 1 to 65535",
			    optarg);
		*listen = optarg;
		break;
	case 'f':
		cfg->flows = optarg;
		break;
	case OPT_LOG:
		*log = optarg;
		break;
	case OPT_LOG_REDACT:
		if (add_redact(cfg, optarg) == -1)
			return misuse(
			    "--log-redact: invalid header name", optarg);
		break;
	case OPT_ACCEPT_ID:
		cfg->accept_id = 1;
		break;
	case 'q':
		cfg->quiet = 1;
		msg_quiet = 1;
		break;
	case OPT_PERSISTENT:
		cfg->persistent = 1;
		break;
	case OPT_MAX_INFLIGHT:
		if (parse_size(optarg, &v, 0) == -1 || v == 0 || v > 1000000)
			return misuse("--max-inflight: invalid count (1 to "
				      "1000000)",
			    optarg);
		cfg->max_inflight = v;
		break;
	case OPT_STOP_TIMEOUT:
		if (parse_size(optarg, &v, 0) == -1 || v > 86400)
			return misuse("--stop-timeout: invalid timeout (0 to "
				      "86400 seconds)",
			    optarg);
		cfg->stop_timeout = v;
		break;
	case 'm':
		return method_option(cfg, optarg);
	case 'b':
		if (parse_size(optarg, &cfg->max_body, 1) == -1 ||
		    cfg->max_body == 0)
			return misuse(
			    "--max-body: invalid size (1 byte or more)",
			    optarg);
		break;
	case OPT_MAX_HEADER:
		if (parse_size(optarg, &v, 1) == -1 || v < 1024 ||
		    v > 64 * 1024 * 1024)
			return misuse(
			    "--max-header: invalid size (1k to 64M)", optarg);
		cfg->max_header = v;
		break;
	case OPT_READ_TIMEOUT:
	case 't':
		if (parse_size(optarg, &v, 0) == -1 || v == 0 || v > 86400)
			return misuse(c == 't' ? "--timeout: invalid timeout "
						 "(1 to 86400 seconds)"
					       : "--read-timeout: invalid "
						 "timeout (1 to 86400 seconds)",
			    optarg);
		*(c == 't' ? &cfg->timeout : &cfg->read_timeout) = v;
		break;
	case 'a':
		cfg->async = 1;
		break;
	case 'r':
		if (parse_respond(optarg, &cfg->respond) == -1)
			return misuse("--respond: expected status, last or "
				      "output",
			    optarg);
		break;
	case 'h':
		usage(stdout);
		return 0;
	case OPT_VERSION:
		msg_version();
		return 0;
	default:
		usage(stderr);
		return EX_USAGE;
	}
	return STAGE_READY;
}

/* Checks that --flows names a folder that can be read and searched, so
 * that a typo is not a server that answers 404 to every request. */
static int
check_flows(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) == -1) {
		msg_error("--flows: %s: %s", dir, strerror(errno));
		return EX_NOINPUT;
	}
	if (!S_ISDIR(st.st_mode))
		return misuse("--flows: not a folder", dir);
	if (access(dir, R_OK | X_OK) == -1) {
		msg_error("--flows: %s: %s", dir, strerror(errno));
		return EX_NOINPUT;
	}
	return STAGE_READY;
}

static int
parse_options(struct listen_config *cfg, int argc, char *argv[],
    const char **listen, const char **log)
{
	static char post[] = "POST";
	int c, status;

	while ((c = getopt_long(
		    argc, argv, "+ab:f:hl:m:qr:t:", options, NULL)) != -1) {
		status = option(cfg, c, listen, log);
		if (status != STAGE_READY)
			return status;
	}
	if (optind < argc)
		cfg->command = argv + optind;
	if (cfg->command != NULL && cfg->flows != NULL)
		return misuse("--flows and a command exclude each other", NULL);
	if (cfg->nmethods == 0)
		add_methods(cfg, post);
	if (cfg->nredact > 0 && *log == NULL)
		return misuse("--log-redact needs --log", NULL);
	if (cfg->persistent && cfg->async)
		return misuse(
		    "--async and --persistent exclude each other", NULL);
	if (cfg->respond != RESPOND_STATUS && cfg->async)
		return misuse(
		    "--respond needs the outcome: drop --async", NULL);
	return cfg->flows != NULL ? check_flows(cfg->flows) : STAGE_READY;
}

/* Opens the --listen socket: [HOST:]PORT or [IPV6]:PORT. */
static int
open_listener(const char *spec)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai;
	char host[256] = "127.0.0.1";
	const char *port = strrchr(spec, ':');
	int fd, on = 1, err;

	if (port != NULL) {
		snprintf(host, sizeof(host), "%.*s", (int)(port - spec), spec);
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		port++;
	} else {
		port = spec;
	}
	err = getaddrinfo(host, port, &hints, &ai);
	if (err != 0) {
		msg_error("--listen: %s: %s", spec, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd != -1)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (fd == -1 || bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		msg_error("--listen: %s: %s", spec, strerror(errno));
		if (fd != -1)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Returns the socket systemd passed (LISTEN_FDS=1 for this process), or
 * -1. */
static int
systemd_listener(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
	    strcmp(fds, "1") != 0)
		return -1;
	/* As sd_listen_fds(3) does, so that no flow takes them for its own. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	return SD_LISTEN_FDS_START;
}

static int
is_connected_socket(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), tlen;
	int type;

	tlen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_STREAM)
		return 0;
	return getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

static void
reopen_log(const struct listen_config *cfg)
{
	int err;

	if (cfg->log == NULL)
		return;
	err = recvlog_reopen(cfg->log);
	if (err != 0)
		msg_error("receive log: reopen failed: %s", strerror(err));
	else
		msg_info("receive log reopened");
}

/* Formats the address that FD is bound to, as HOST:PORT or [HOST]:PORT,
 * as the kernel bound it, for the "listening on" log line. */
static void
format_bound(int fd, const char *fallback, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];

	snprintf(buf, len, "%s", fallback != NULL ? fallback : "-");
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port,
		sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(buf, len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
	    port);
}

/* Serves until SIGTERM or SIGINT, which every thread has blocked.  SIGHUP
 * reopens the receive log, for logrotate(8).  SPEC is the --listen
 * argument, or NULL for the LISTEN_FDS socket. */
static int
serve_listener(const struct listen_config *cfg, int fd, const char *spec)
{
	struct http_server *srv;
	char where[NI_MAXHOST + NI_MAXSERV + 32];
	sigset_t set;
	int sig;

	format_bound(fd, spec, where, sizeof(where));
	if (spec == NULL)
		snprintf(where + strlen(where), sizeof(where) - strlen(where),
		    " (the LISTEN_FDS socket)");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	srv = http_start(cfg, fd);
	if (srv == NULL)
		return EX_UNAVAILABLE;
	if (cfg->flows != NULL)
		msg_info("listening on %s, flows in %s", where, cfg->flows);
	else if (cfg->command != NULL)
		msg_info("listening on %s, command %s", where, cfg->command[0]);
	else
		msg_info("listening on %s, envelopes to stdout", where);
	for (;;) {
		sigwait(&set, &sig);
		if (sig != SIGHUP)
			break;
		reopen_log(cfg);
	}
	msg_info("stopping on signal %d", sig);
	http_stop(srv, cfg->stop_timeout);
	return 0;
}

/* Serves the one connection on fd 0 and exits when it closes. */
static int
serve_inetd(const struct listen_config *cfg)
{
	struct http_server *srv;
	struct stat st;
	int null;

	if (cfg->flows == NULL && cfg->command == NULL &&
	    fstat(STDOUT_FILENO, &st) == 0 && S_ISSOCK(st.st_mode))
		return misuse("stdout is the connection: give a flow", NULL);
	/* fd 1 is often the same socket, so pointing it elsewhere lets the
	 * peer see the end of the connection once libmicrohttpd closes fd 0. */
	null = open("/dev/null", O_WRONLY);
	if (null != -1 && fstat(STDOUT_FILENO, &st) == 0 &&
	    S_ISSOCK(st.st_mode))
		dup2(null, STDOUT_FILENO);
	if (null != -1)
		close(null);
	srv = http_start(cfg, -1);
	if (srv == NULL)
		return EX_UNAVAILABLE;
	if (http_serve_inetd(srv, STDIN_FILENO) == -1) {
		msg_error("stdin: connection could not be served: %s",
		    strerror(errno));
		http_stop(srv, 0);
		return EX_IOERR;
	}
	http_stop(srv, cfg->timeout + 1);
	return 0;
}

/* Puts the folder of this executable first in PATH, so that a flow finds
 * the whook programs installed beside whook-listen. */
static void
path_add_self(void)
{
	char self[4096], *slash, *path;
	const char *old = getenv("PATH");
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	if (asprintf(&path, "%s:%s", self, old ? old : "/usr/bin:/bin") < 0)
		return;
	setenv("PATH", path, 1);
	free(path);
}

int
main(int argc, char *argv[])
{
	struct listen_config cfg = {
	    .max_body = 25ULL * 1024 * 1024,
	    .max_header = 32 * 1024,
	    .read_timeout = 10,
	    .timeout = 30,
	    .max_inflight = 256,
	    .stop_timeout = 10,
	};
	const char *listen = NULL, *log = NULL;
	char why[512];
	int status, fd;

	msg_init("whook-listen");
	argv[0] = "whook-listen";
	status = parse_options(&cfg, argc, argv, &listen, &log);
	if (status != STAGE_READY) {
		free_redact(&cfg);
		return status;
	}
	if (log != NULL) {
		cfg.log = recvlog_open(log, 0600, why, sizeof(why));
		if (cfg.log == NULL) {
			msg_error("receive log: %s", why);
			return EX_CANTCREAT;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	setenv("WHOOK_OUTCOMES", "1", 1);
	path_add_self();
	fd = listen != NULL ? open_listener(listen) : systemd_listener();
	if (listen != NULL && fd == -1)
		return EX_UNAVAILABLE;
	if (fd != -1)
		status = serve_listener(&cfg, fd, listen);
	else if (!is_connected_socket(STDIN_FILENO))
		status = misuse(
		    "stdin is not a connected socket: give --listen", NULL);
	else {
		/* A connection's process runs its whook-run flow files itself,
		 * once for all its requests, unless --async answers first. */
		cfg.inproc_files = !cfg.async;
		status = serve_inetd(&cfg);
	}
	if (cfg.log != NULL)
		recvlog_close(cfg.log);
	free_redact(&cfg);
	return status;
}
