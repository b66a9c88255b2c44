/*
 * The receive log: every accepted envelope appended, whole, to an NDJSON
 * file and made durable with fdatasync(2) before the request is answered
 * 2xx.  Appenders that arrive while a sync is running wait for the next
 * one, so under load one sync covers many envelopes (a group commit).
 * recvlog_reopen opens the path anew, for logrotate's SIGHUP.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "whook.h"

struct recvlog {
	pthread_mutex_t lock;
	pthread_cond_t synced_cond;
	char *path;
	mode_t mode;
	int fd;
	unsigned long long written; /* lines written so far */
	unsigned long long synced;  /* lines known to be on disk */
	int syncing;
	int failed; /* errno of the last failed write or sync, or 0 */
};

static int
recvlog_open_fd(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);
}

struct recvlog *
recvlog_open(const char *path, mode_t mode, char *why, size_t whylen)
{
	struct recvlog *log;

	log = calloc(1, sizeof(*log));
	if (log == NULL || (log->path = strdup(path)) == NULL) {
		snprintf(why, whylen, "out of memory");
		free(log);
		return NULL;
	}
	log->mode = mode;
	log->fd = recvlog_open_fd(path, mode);
	if (log->fd == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		free(log->path);
		free(log);
		return NULL;
	}
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->synced_cond, NULL);
	return log;
}

static int
write_line(int fd, const char *line, size_t len)
{
	struct iovec iov[2] = {
	    {.iov_base = (void *)line, .iov_len = len},
	    {.iov_base = "\n", .iov_len = 1},
	};
	ssize_t n;

	/* O_APPEND makes one writev(2) land whole at the end of the file. */
	do
		n = writev(fd, iov, 2);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return errno;
	return (size_t)n == len + 1 ? 0 : EIO;
}

/*
 * Appends LINE (without its newline) and returns once it is on disk: 0, or
 * an errno value.  A short or failed write fails that append and leaves a
 * partial line that whook-send --replay skips as invalid JSON.
 */
int
recvlog_append(struct recvlog *log, const char *line, size_t len)
{
	unsigned long long mine, target;
	int err, fd;

	pthread_mutex_lock(&log->lock);
	err = write_line(log->fd, line, len);
	if (err != 0) {
		pthread_mutex_unlock(&log->lock);
		return err;
	}
	mine = ++log->written;
	while (log->synced < mine) {
		if (log->syncing) {
			pthread_cond_wait(&log->synced_cond, &log->lock);
			continue;
		}
		log->syncing = 1;
		target = log->written;
		fd = log->fd;
		pthread_mutex_unlock(&log->lock);
		err = fdatasync(fd) == -1 ? errno : 0;
		pthread_mutex_lock(&log->lock);
		log->syncing = 0;
		log->failed = err;
		if (err == 0 && log->synced < target)
			log->synced = target;
		pthread_cond_broadcast(&log->synced_cond);
		if (err != 0)
			break;
	}
	if (log->synced < mine && err == 0)
		err = log->failed ? log->failed : EIO;
	pthread_mutex_unlock(&log->lock);
	return err;
}

/* Opens the path anew after a rotation; returns 0 or an errno value, and
 * keeps writing to the old file when the new one cannot be opened. */
int
recvlog_reopen(struct recvlog *log)
{
	int fd, old;

	fd = recvlog_open_fd(log->path, log->mode);
	if (fd == -1)
		return errno;
	pthread_mutex_lock(&log->lock);
	while (log->syncing)
		pthread_cond_wait(&log->synced_cond, &log->lock);
	old = log->fd;
	fdatasync(old);
	log->synced = log->written;
	log->fd = fd;
	pthread_mutex_unlock(&log->lock);
	close(old);
	return 0;
}

void
recvlog_close(struct recvlog *log)
{
	if (log == NULL)
		return;
	fdatasync(log->fd);
	close(log->fd);
	pthread_mutex_destroy(&log->lock);
	pthread_cond_destroy(&log->synced_cond);
	free(log->path);
	free(log);
}
