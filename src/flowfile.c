/*
 * Flow files for whook-run: the programs of a pipeline written as a shell
 * would, one program and its arguments per line, joined by "|", with "#"
 * comments.  Each stage's words are expanded by wordexp(3) with
 * WRDE_NOCMD, so quotes and ${WHOOK_DB:-whook.db} work as in sh(1) but a
 * command substitution is an error.  Only whook's filter programs may
 * appear; a flow that needs any other command stays a shell script.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wordexp.h>

#include "whook.h"

#define FLOWFILE_MAX (256 * 1024)
#define STAGES_MAX (sizeof(((struct flowfile *)0)->argv) / sizeof(char **))

static char *
read_file(const char *path, char *why, size_t whylen)
{
	char *buf;
	ssize_t n = 0;
	size_t used = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	buf = malloc(FLOWFILE_MAX + 1);
	while (buf != NULL && used < FLOWFILE_MAX &&
	       (n = read(fd, buf + used, FLOWFILE_MAX - used)) > 0)
		used += n;
	if (n == -1)
		snprintf(why, whylen, "%s", strerror(errno));
	else if (buf == NULL)
		snprintf(why, whylen, "out of memory");
	else if (used == FLOWFILE_MAX)
		snprintf(
		    why, whylen, "larger than %d KiB", FLOWFILE_MAX / 1024);
	close(fd);
	if (buf == NULL || n == -1 || used == FLOWFILE_MAX) {
		free(buf);
		return NULL;
	}
	buf[used] = '\0';
	return buf;
}

/*
 * Splits TEXT in place into stage texts at each "|" outside quotes, with
 * comments and line continuations turned into blanks.  Returns the number
 * of stages, or -1 with *why set.
 */
static int
split_stages(char *text, char *stages[], size_t max, char *why, size_t whylen)
{
	char *p, quote = 0;
	size_t n = 0;
	int word_start = 1;

	stages[n++] = text;
	for (p = text; *p != '\0'; p++) {
		if (quote != 0) {
			if (*p == '\\' && quote == '"' && p[1] != '\0')
				p++;
			else if (*p == quote)
				quote = 0;
			continue;
		}
		if (*p == '\\' && p[1] == '\n') {
			p[0] = p[1] = ' ';
		} else if (*p == '\\' && p[1] != '\0') {
			p++;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '#' && word_start) {
			while (*p != '\0' && *p != '\n')
				*p++ = ' ';
			p--;
		} else if (*p == '\n' || *p == '\r') {
			*p = ' ';
		} else if (*p == '|') {
			if (n == max) {
				snprintf(
				    why, whylen, "more than %zu stages", max);
				return -1;
			}
			*p = '\0';
			stages[n++] = p + 1;
		}
		word_start = *p == ' ' || *p == '\t' || *p == '\0';
	}
	if (quote != 0) {
		snprintf(why, whylen, "unterminated %c quote", quote);
		return -1;
	}
	return (int)n;
}

static const char *
wordexp_reason(int rc)
{
	switch (rc) {
	case WRDE_BADCHAR:
		return "unquoted special character (one of & ; < > ( ) { })";
	case WRDE_CMDSUB:
		return "command substitution is not allowed";
	case WRDE_NOSPACE:
		return "out of memory";
	case WRDE_SYNTAX:
		return "shell syntax error";
	default:
		return "word expansion failed";
	}
}

static int
is_blank_text(const char *s)
{
	return s[strspn(s, " \t")] == '\0';
}

static int
known_program(const char *word)
{
	const char *base = strrchr(word, '/');

	base = base != NULL ? base + 1 : word;
	return strcmp(base, "whook-check") == 0 ||
	       strcmp(base, "whook-map") == 0 ||
	       strcmp(base, "whook-insert") == 0;
}

static int
expand_stage(struct flowfile *ff, const char *text, char *why, size_t whylen)
{
	wordexp_t *we;
	size_t i = ff->nstages;
	int rc;

	if (is_blank_text(text)) {
		snprintf(why, whylen, "stage %zu: empty", i + 1);
		return -1;
	}
	we = calloc(1, sizeof(*we));
	if (we == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = wordexp(text, we, WRDE_NOCMD);
	if (rc != 0) {
		snprintf(
		    why, whylen, "stage %zu: %s", i + 1, wordexp_reason(rc));
		if (rc == WRDE_NOSPACE)
			wordfree(we);
		free(we);
		return -1;
	}
	ff->words[i] = we;
	ff->argv[i] = we->we_wordv;
	ff->argc[i] = (int)we->we_wordc;
	ff->nstages++;
	if (we->we_wordc == 0 || !known_program(we->we_wordv[0])) {
		snprintf(why, whylen,
		    "stage %zu: %s: not whook-check, "
		    "whook-map or whook-insert",
		    i + 1, we->we_wordc ? we->we_wordv[0] : "(no words)");
		return -1;
	}
	return 0;
}

/* Loads the flow file PATH into *ff; returns 0, or -1 with *why set. */
int
flowfile_load(const char *path, struct flowfile *ff, char *why, size_t whylen)
{
	char *text, *stages[STAGES_MAX];
	int n, i;

	memset(ff, 0, sizeof(*ff));
	text = read_file(path, why, whylen);
	if (text == NULL)
		return -1;
	n = split_stages(text, stages, STAGES_MAX, why, whylen);
	for (i = 0; i < n; i++) {
		if (n == 1 && is_blank_text(stages[i])) {
			snprintf(why, whylen, "no stages");
			n = -1;
			break;
		}
		if (expand_stage(ff, stages[i], why, whylen) == -1) {
			n = -1;
			break;
		}
	}
	free(text);
	if (n == -1) {
		flowfile_free(ff);
		return -1;
	}
	return 0;
}

/* Returns whether PATH starts with an interpreter line naming whook-run. */
int
flowfile_is_runnable(const char *path)
{
	char line[256];
	ssize_t n;
	char *nl;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return 0;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return 0;
	line[n] = '\0';
	nl = strchr(line, '\n');
	if (nl == NULL)
		return 0;
	while (nl > line && (nl[-1] == ' ' || nl[-1] == '\r'))
		nl--;
	*nl = '\0';
	n = nl - line;
	return n >= 9 && strcmp(line + n - 9, "whook-run") == 0 &&
	       (n == 11 || line[n - 10] == '/' || line[n - 10] == ' ');
}

void
flowfile_free(struct flowfile *ff)
{
	size_t i;

	for (i = 0; i < ff->nstages; i++) {
		wordfree(ff->words[i]);
		free(ff->words[i]);
	}
	ff->nstages = 0;
}
