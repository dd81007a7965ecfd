# jam: PGXS build of the extension, plus the developer commands
# (make run, make stop, make test, make bench) that live in scripts/.
EXTENSION = jam
MODULE_big = jam
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA = jam--1.0.sql $(wildcard jam--*--*.sql)
PG_CPPFLAGS = -Isrc
SHLIB_LINK = -lsodium -lcurl -lcrypto

# -Werror is on by default so warnings never pile up; WERROR=0 turns it off.
WERROR ?= 1
PG_CFLAGS += -Wall $(if $(filter 1,$(WERROR)),-Werror)

# The HTTP shim: a plain C program on civetweb, libpq and json-c, built by
# make all as shim/jam-shim with its own flags (not PGXS's PROGRAM, which
# would compile it with the server's flags and link the server's libraries).
# The fuzz target for its request parsing needs clang's libFuzzer.
SHIM = shim/jam-shim
SHIM_SRCS = $(wildcard shim/*.c)
# docs/openapi.json, compiled in (see shim/openapi.h); made by its own rule below.
SHIM_OPENAPI_OBJ = shim/openapi_doc.o
SHIM_OBJS = $(SHIM_SRCS:.c=.o) $(SHIM_OPENAPI_OBJ)
SHIM_TLS_COMPAT = shim/libjam-tls-compat.so
SHIM_FUZZ = shim/fuzz/fuzz-request
SHIM_FUZZ_SRCS = shim/fuzz/fuzz_request.c shim/plan.c shim/request.c shim/routes.c shim/buf.c shim/trace.c shim/batch.c shim/framing.c shim/jsonkeys.c shim/sse.c shim/tilepath.c
SHIM_PKGS = json-c libpq
SHIM_CFLAGS = -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	$(if $(filter 1,$(WERROR)),-Werror) $(shell pkg-config --cflags $(SHIM_PKGS) 2>/dev/null)
SHIM_LIBS = -lcivetweb $(shell pkg-config --libs $(SHIM_PKGS) 2>/dev/null) -lpthread -lm
EXTRA_CLEAN = $(SHIM) $(SHIM_OBJS) $(SHIM_TLS_COMPAT) $(SHIM_FUZZ)

# jamctl, the command-line client of the shim (cli/): a plain C program on
# libcurl, json-c and libsodium, with the shim's warning flags.  make
# install puts it and its man page under JAM_PREFIX (not PGXS's bindir,
# which is the server's and not on PATH); DESTDIR is honoured.
CLI = cli/jamctl
CLI_SRCS = $(wildcard cli/*.c)
CLI_OBJS = $(CLI_SRCS:.c=.o)
CLI_MAN = cli/jamctl.1
CLI_PKGS = libcurl json-c libsodium
CLI_CFLAGS = -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
	$(if $(filter 1,$(WERROR)),-Werror) $(shell pkg-config --cflags $(CLI_PKGS) 2>/dev/null)
CLI_LIBS = $(shell pkg-config --libs $(CLI_PKGS) 2>/dev/null)
JAM_PREFIX ?= /usr/local
JAM_BINDIR ?= $(JAM_PREFIX)/bin
JAM_MANDIR ?= $(JAM_PREFIX)/share/man
# The shim loads libjam-tls-compat.so from its executable's own folder
# (/proc/self/exe, links resolved), so both live in JAM_LIBEXECDIR and the
# bin folder holds a link to the shim.
JAM_LIBEXECDIR ?= $(JAM_PREFIX)/lib/jam
EXTRA_CLEAN += $(CLI) $(CLI_OBJS)

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)

# The pg_config on PATH may belong to another major version; jam targets 15.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
include $(PGXS)
all: $(SHIM) $(SHIM_TLS_COMPAT) $(CLI)
install: install-cli install-shim
uninstall: uninstall-cli uninstall-shim
else
# No server headers yet (fresh machine): only the targets that install them work.
all install installcheck:
	@echo "$(PG_CONFIG) not found: run 'make deps' (or 'make run' / 'make test') first" >&2
	@exit 1
endif

$(SHIM): $(SHIM_OBJS)
	$(CC) -o $@ $(SHIM_OBJS) $(SHIM_LIBS) -ldl

# Loaded by jam-shim when it serves HTTPS; see shim/tls/compat.c.
$(SHIM_TLS_COMPAT): shim/tls/compat.c
	$(CC) -O2 -Wall $(if $(filter 1,$(WERROR)),-Werror) -shared -fPIC -Wl,-soname,libssl.so -o $@ $< -lssl

shim/%.o: shim/%.c $(wildcard shim/*.h)
	$(CC) $(SHIM_CFLAGS) -c -o $@ $<

# The OpenAPI document served at GET /jam/openapi.json: docs/openapi.json is
# its source of truth, and its bytes become the array shim_openapi_json
# (od and sed write the C source, which goes straight to the compiler), so
# the shim reads no file at run time, wherever it is copied to.
$(SHIM_OPENAPI_OBJ): docs/openapi.json shim/openapi.h
	test -s docs/openapi.json
	{ printf '#include "openapi.h"\nconst unsigned char shim_openapi_json[] = {\n'; \
	  od -An -v -tx1 docs/openapi.json | sed 's/[0-9a-f][0-9a-f]/0x&,/g'; \
	  printf '};\nconst size_t shim_openapi_json_len = sizeof(shim_openapi_json);\n'; } | \
	$(CC) $(SHIM_CFLAGS) -Ishim -x c -c -o $@ -

# The fuzz target: the pure request parsing and routing under libFuzzer,
# AddressSanitizer and UBSan.
$(SHIM_FUZZ): $(SHIM_FUZZ_SRCS) $(wildcard shim/*.h)
	clang -g -O1 -std=gnu11 -Wall $(if $(filter 1,$(WERROR)),-Werror) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		$(shell pkg-config --cflags json-c) -Ishim -o $@ $(SHIM_FUZZ_SRCS) $(shell pkg-config --libs json-c)

$(CLI): $(CLI_OBJS)
	$(CC) -o $@ $(CLI_OBJS) $(CLI_LIBS)

# The benchmark's submit-to-report latency client (bench/workers.sh), on libpq.
BENCH_LATENCY = bench/latency
$(BENCH_LATENCY): bench/latency.c
	$(CC) $(SHIM_CFLAGS) -o $@ $< $(shell pkg-config --libs libpq 2>/dev/null)
EXTRA_CLEAN += $(BENCH_LATENCY)

cli/%.o: cli/%.c $(wildcard cli/*.h)
	$(CC) $(CLI_CFLAGS) -c -o $@ $<

.PHONY: install-cli uninstall-cli
install-cli: $(CLI) $(CLI_MAN)
	install -d '$(DESTDIR)$(JAM_BINDIR)' '$(DESTDIR)$(JAM_MANDIR)/man1'
	install -m 755 $(CLI) '$(DESTDIR)$(JAM_BINDIR)/jamctl'
	install -m 644 $(CLI_MAN) '$(DESTDIR)$(JAM_MANDIR)/man1/jamctl.1'
uninstall-cli:
	rm -f '$(DESTDIR)$(JAM_BINDIR)/jamctl' '$(DESTDIR)$(JAM_MANDIR)/man1/jamctl.1'

.PHONY: install-shim uninstall-shim
install-shim: $(SHIM) $(SHIM_TLS_COMPAT)
	install -d '$(DESTDIR)$(JAM_BINDIR)' '$(DESTDIR)$(JAM_LIBEXECDIR)'
	install -m 755 $(SHIM) '$(DESTDIR)$(JAM_LIBEXECDIR)/jam-shim'
	install -m 644 $(SHIM_TLS_COMPAT) '$(DESTDIR)$(JAM_LIBEXECDIR)/libjam-tls-compat.so'
	ln -sf '$(JAM_LIBEXECDIR)/jam-shim' '$(DESTDIR)$(JAM_BINDIR)/jam-shim'
uninstall-shim:
	rm -f '$(DESTDIR)$(JAM_BINDIR)/jam-shim' '$(DESTDIR)$(JAM_LIBEXECDIR)/jam-shim' \
		'$(DESTDIR)$(JAM_LIBEXECDIR)/libjam-tls-compat.so'
	-rmdir '$(DESTDIR)$(JAM_LIBEXECDIR)' 2>/dev/null

# Every object depends on the shared headers, so a changed error table or
# struct never leaves a stale object behind.
$(OBJS): $(wildcard src/*.h)

# The developer commands install what is missing, then build in a fresh make
# so that PGXS is found even if deps just installed it.  The scripts pick
# pg_config the same way as above; a PG_CONFIG given to make reaches them
# through the environment.
.PHONY: deps run stop test bench fuzz
fuzz: $(SHIM_FUZZ)
deps:
	bash scripts/deps.sh
run: deps
	$(MAKE) all install
	bash scripts/run.sh
stop:
	bash scripts/stop.sh
test: deps
	$(MAKE) all install $(SHIM_FUZZ) WERROR=1
	bash scripts/test.sh
bench:
	bash scripts/deps.sh bench
	$(MAKE) all install $(BENCH_LATENCY)
	bash bench/run.sh
