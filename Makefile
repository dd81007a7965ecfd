# jam: PGXS build of the extension, plus the developer commands
# (make run, make stop, make test, make bench) that live in scripts/.
EXTENSION = jam
MODULE_big = jam
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA = jam--1.0.sql $(wildcard jam--*--*.sql)
PG_CPPFLAGS = -Isrc
SHLIB_LINK = -lsodium

# -Werror is on by default so warnings never pile up; WERROR=0 turns it off.
WERROR ?= 1
PG_CFLAGS += -Wall $(if $(filter 1,$(WERROR)),-Werror)

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)

# The pg_config on PATH may belong to another major version; jam targets 15.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
include $(PGXS)
else
# No server headers yet (fresh machine): only the targets that install them work.
all install installcheck:
	@echo "$(PG_CONFIG) not found: run 'make deps' (or 'make run' / 'make test') first" >&2
	@exit 1
endif

# Every object depends on the shared headers, so a changed error table or
# struct never leaves a stale object behind.
$(OBJS): $(wildcard src/*.h)

# The developer commands install what is missing, then build in a fresh make
# so that PGXS is found even if deps just installed it.  The scripts pick
# pg_config the same way as above; a PG_CONFIG given to make reaches them
# through the environment.
.PHONY: deps run stop test bench
deps:
	bash scripts/deps.sh
run: deps
	$(MAKE) all install
	bash scripts/run.sh
stop:
	bash scripts/stop.sh
test: deps
	$(MAKE) all install WERROR=1
	bash scripts/test.sh
bench: deps
	$(MAKE) all install
	bash bench/run.sh
