/*
 * Unit tests of the receive log: concurrent appends all land whole, and a
 * reopen after a rename writes to the new file.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "whook.h"

#define THREADS 8
#define LINES 200

static struct recvlog *shared_log;
static int append_errors;

static void *
append_lines(void *arg)
{
	char line[64];
	int i, n;

	for (i = 0; i < LINES; i++) {
		n = snprintf(line, sizeof(line), "{\"t\":%ld,\"i\":%d}",
		    (long)(intptr_t)arg, i);
		if (recvlog_append(shared_log, line, n) != 0)
			__atomic_add_fetch(&append_errors, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static long
count_lines(const char *path, int *bad)
{
	FILE *f = fopen(path, "r");
	char buf[256];
	long n = 0;

	*bad = 0;
	if (f == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		n++;
		if (buf[0] != '{' || strchr(buf, '\n') == NULL)
			(*bad)++;
	}
	fclose(f);
	return n;
}

int
main(void)
{
	char dir[] = "/tmp/whook-recvlog-XXXXXX", path[256], moved[256];
	char why[256];
	pthread_t threads[THREADS];
	struct stat sb;
	int i, bad;

	msg_init("test-recvlog");
	CHECK("recvlog temporary folder", mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/received.ndjson", dir);
	snprintf(moved, sizeof(moved), "%s/received.ndjson.1", dir);
	shared_log = recvlog_open(path, 0600, why, sizeof(why));
	CHECK("recvlog opens", shared_log != NULL);
	if (shared_log == NULL)
		UNIT_EXIT();
	CHECK("recvlog mode 0600",
	    stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	for (i = 0; i < THREADS; i++)
		pthread_create(
		    &threads[i], NULL, append_lines, (void *)(intptr_t)i);
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	CHECK("recvlog no append failed", append_errors == 0);
	CHECK("recvlog every line landed",
	    count_lines(path, &bad) == THREADS * LINES);
	CHECK("recvlog lines whole", bad == 0);

	CHECK("recvlog rotated away", rename(path, moved) == 0);
	CHECK("recvlog reopens", recvlog_reopen(shared_log) == 0);
	CHECK("recvlog appends after reopen",
	    recvlog_append(shared_log, "{}", 2) == 0);
	CHECK("recvlog new file has the line", count_lines(path, &bad) == 1);
	CHECK("recvlog old file kept",
	    count_lines(moved, &bad) == THREADS * LINES);
	recvlog_close(shared_log);
	CHECK("recvlog open failure reported",
	    recvlog_open("/nonexistent/dir/log", 0600, why, sizeof(why)) ==
		    NULL &&
		strstr(why, "No such file") != NULL);
	unlink(path);
	unlink(moved);
	rmdir(dir);
	UNIT_EXIT();
}
