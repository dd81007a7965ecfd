# jam: PGXS build of the extension, plus the two commands (make run, make test).
EXTENSION = jam
MODULE_big = jam
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA = jam--1.0.sql
PG_CPPFLAGS = -Isrc
SHLIB_LINK = -lsodium
WERROR ?= 1
PG_CFLAGS = -Wall $(if $(filter 1,$(WERROR)),-Werror)

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared headers, so a changed error table or
# struct never leaves a stale object behind.
$(OBJS): $(wildcard src/*.h)

.PHONY: deps run stop test bench
deps:
	bash scripts/deps.sh
run: deps
	$(MAKE) all install
	bash scripts/run.sh
stop:
	bash scripts/stop.sh
test: deps
	$(MAKE) all install
	bash scripts/test.sh
bench: deps
	$(MAKE) all install
	bash bench/run.sh
