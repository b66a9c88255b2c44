# whook: make builds bin/, make check runs the tests, make demo runs the
# transactions flow behind a socket.  Libraries are found by pkg-config,
# but for libjq: Debian's libjq-dev 1.6 ships no .pc file, so JQ_LIBS is
# a variable a packager can override.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config
JQ_LIBS ?= -ljq -lonig

WARN = -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -D_GNU_SOURCE
ifeq ($(SANITIZE),1)
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
endif
ALL_CFLAGS = $(WARN) $(SAN) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)

CRYPTO_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcrypto)
CRYPTO_LIBS = $(shell $(PKG_CONFIG) --libs libcrypto)
MHD_CFLAGS = $(shell $(PKG_CONFIG) --cflags libmicrohttpd)
MHD_LIBS = $(shell $(PKG_CONFIG) --libs libmicrohttpd)
SQLITE_CFLAGS = $(shell $(PKG_CONFIG) --cflags sqlite3)
SQLITE_LIBS = $(shell $(PKG_CONFIG) --libs sqlite3)
CURL_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS = $(shell $(PKG_CONFIG) --libs libcurl)
LIB_CFLAGS = $(CRYPTO_CFLAGS) $(MHD_CFLAGS) $(SQLITE_CFLAGS) $(CURL_CFLAGS)
BASE_LIBS = $(JQ_LIBS) $(CRYPTO_LIBS) -lm

PROGS = bin/whook-listen bin/whook-check bin/whook-map bin/whook-insert \
	bin/whook-send bin/whook-run
MANS = man/whook.7 man/whook-listen.1 man/whook-check.1 man/whook-map.1 \
	man/whook-insert.1 man/whook-send.1 man/whook-run.1

COMMON = src/msg.o src/secret.o src/json.o src/path.o src/envelope.o \
	src/ndjson.o src/stage.o
# One line a program: the objects only it needs.
LISTEN_OBJS = src/http.o src/flow.o src/listen-trigger.o src/recvlog.o \
	src/listen-persist.o src/listen-inproc.o $(RUN_OBJS)
CHECK_OBJS = src/check.o src/rule.o src/signature.o src/jqprog.o
MAP_OBJS = src/map.o src/template.o src/jqprog.o
INSERT_OBJS = src/insert.o src/store.o
SEND_OBJS = src/items.o src/send-http.o src/replay.o src/signature.o
RUN_OBJS = src/flowfile.o src/chain.o $(CHECK_OBJS) $(MAP_OBJS) \
	$(INSERT_OBJS)
# Every object but the mains, for the unit tests.
LIB_OBJS = $(sort $(COMMON) $(LISTEN_OBJS) $(CHECK_OBJS) $(MAP_OBJS) \
	$(INSERT_OBJS) $(SEND_OBJS) $(RUN_OBJS))
UNIT_TESTS = $(patsubst %.c,%,$(wildcard tests/unit/test-*.c))

all: $(PROGS)

bin/whook-listen: src/whook-listen.o $(COMMON) $(LISTEN_OBJS)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(MHD_LIBS) $(SQLITE_LIBS) $(BASE_LIBS) \
	    -lpthread
bin/whook-check: src/whook-check.o $(COMMON) $(CHECK_OBJS)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BASE_LIBS)
bin/whook-map: src/whook-map.o $(COMMON) $(MAP_OBJS)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(BASE_LIBS)
bin/whook-insert: src/whook-insert.o $(COMMON) $(INSERT_OBJS)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SQLITE_LIBS) $(BASE_LIBS)
bin/whook-send: src/whook-send.o $(COMMON) $(SEND_OBJS)
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CURL_LIBS) $(BASE_LIBS)
bin/whook-run: src/whook-run.o $(COMMON) $(sort $(RUN_OBJS))
	@mkdir -p bin
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SQLITE_LIBS) $(BASE_LIBS)

src/%.o: src/%.c src/whook.h .build-flags
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -c -o $@ $<

tests/unit/test-%: tests/unit/test-%.c tests/unit/unit.h $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LIB_CFLAGS) -Isrc $(ALL_LDFLAGS) -o $@ $< \
	    $(LIB_OBJS) $(MHD_LIBS) $(SQLITE_LIBS) $(CURL_LIBS) \
	    $(BASE_LIBS) -lpthread

# Objects are rebuilt when the flags change, so SANITIZE=1 never links
# with objects built without it.
.build-flags: FORCE
	@echo '$(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || \
	    echo '$(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@

deps:
	@sh tools/deps build

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS)
	@sh tools/deps test
	@tests/run

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/deps demo
	@sh tools/demo

lint:
	mandoc -Tlint -Wwarning $(MANS)

bench: deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/run

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(PROGS) $(DESTDIR)$(BINDIR)
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1
	install -m 644 man/whook.7 $(DESTDIR)$(MANDIR)/man7

uninstall:
	rm -f $(PROGS:bin/%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(MANS:man/%.1=$(DESTDIR)$(MANDIR)/man1/%.1)
	rm -f $(DESTDIR)$(MANDIR)/man7/whook.7

clean:
	rm -rf bin src/*.o $(UNIT_TESTS) .build-flags

.PHONY: all check demo deps lint bench install uninstall clean FORCE
