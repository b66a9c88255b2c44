/*
 * Secrets: read from a file ("@FILE", as systemd's LoadCredential= leaves
 * them) or from the environment ("env:NAME"), so that no secret is on a
 * command line where ps(1) shows it.  Comparison takes the same time
 * whatever the inputs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "whook.h"

int
secret_spec_valid(const char *spec)
{
	return (spec[0] == '@' && spec[1] != '\0') ||
	       (strncmp(spec, "env:", 4) == 0 && spec[4] != '\0');
}

static int
secret_read_file(
    const char *path, char *buf, size_t *len, char *why, size_t whylen)
{
	ssize_t n;
	size_t used = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = read(fd, buf + used, SECRET_MAX + 1 - used);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
		if (used > SECRET_MAX)
			break;
	}
	if (n == -1)
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
	else if (used > SECRET_MAX)
		snprintf(
		    why, whylen, "%s: larger than %d bytes", path, SECRET_MAX);
	close(fd);
	if (n == -1 || used > SECRET_MAX)
		return -1;
	*len = used;
	return 0;
}

/*
 * Loads the secret that SPEC names into *data, a buffer for secret_free.
 * One trailing newline (LF or CRLF) of a file is dropped, because
 * "echo secret >file" writes one.  An empty secret is an error.
 */
int
secret_load(
    const char *spec, char **data, size_t *len, char *why, size_t whylen)
{
	const char *value;
	char *buf;
	size_t n = 0;

	if (!secret_spec_valid(spec)) {
		snprintf(why, whylen,
		    "a secret is given as @FILE or "
		    "env:NAME, never on the command line");
		return -1;
	}
	buf = malloc(SECRET_MAX + 2);
	if (buf == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (spec[0] == '@') {
		if (secret_read_file(spec + 1, buf, &n, why, whylen) == -1) {
			secret_free(buf, SECRET_MAX + 2);
			return -1;
		}
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	} else {
		value = getenv(spec + 4);
		if (value == NULL) {
			snprintf(why, whylen,
			    "environment variable %s is "
			    "not set",
			    spec + 4);
			free(buf);
			return -1;
		}
		n = strlen(value);
		if (n > SECRET_MAX) {
			snprintf(why, whylen,
			    "environment variable %s is "
			    "larger than %d bytes",
			    spec + 4, SECRET_MAX);
			free(buf);
			return -1;
		}
		memcpy(buf, value, n);
	}
	if (n == 0) {
		snprintf(why, whylen, "%s: the secret is empty", spec);
		secret_free(buf, SECRET_MAX + 2);
		return -1;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

void
secret_free(char *data, size_t len)
{
	if (data == NULL)
		return;
	OPENSSL_cleanse(data, len);
	free(data);
}

/* SHA-256, fetched once.  On the test machine an HMAC over
 * EVP_sha256(), which looks the algorithm up on every use, took 1 us, and
 * EVP_Digest with the fetched one 0.1 us. */
static EVP_MD *sha256;

static void
fetch_sha256(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int
secret_digest(const void *data, size_t len, unsigned char out[SECRET_DIGEST])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned int n = 0;
	const EVP_MD *md;

	pthread_once(&once, fetch_sha256);
	/* A failed fetch costs only speed: EVP_sha256() looks it up each
	 * time. */
	md = sha256 != NULL ? sha256 : EVP_sha256();
	if (EVP_Digest(data, len, out, &n, md, NULL) != 1 || n != SECRET_DIGEST)
		return -1;
	return 0;
}

/*
 * Compares A with the byte string whose digest is DIGEST in constant
 * time, lengths included.  A is reduced to its SHA-256 digest, which
 * CRYPTO_memcmp compares, so the time taken shows neither the first
 * differing byte nor the length of the expected value.  A failed digest
 * compares unequal.
 */
int
secret_matches(
    const void *a, size_t alen, const unsigned char digest[SECRET_DIGEST])
{
	unsigned char da[SECRET_DIGEST];

	return secret_digest(a, alen, da) == 0 &&
	       CRYPTO_memcmp(da, digest, SECRET_DIGEST) == 0;
}

int
secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char db[SECRET_DIGEST];

	return secret_digest(b, blen, db) == 0 && secret_matches(a, alen, db);
}
