# minikafka — build, test, benchmark, run.  See README.md.
#
#   make            build build/minikafka (installs missing Debian packages)
#   make run        build and mount a single node in the foreground
#   make test       everything CI runs: unit tests (plain, ASan/UBSan, valgrind),
#                   the Raft simulator and its mutants, end-to-end tests on a real mount
#   make bench      figures against passthrough_ll and the raw local file system
#
# Sub-areas add their own targets from a fragment next to their code
# (raft/raft.mk, tests/bench/bench.mk, tests/e2e/e2e.mk) and append the names of
# their test targets to TEST_TARGETS.

BUILD   ?= build
CC      ?= gcc
PKGS    := fuse3 libuv libxxhash libsodium zlib snappy liblz4 libzstd
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASEFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUSE_USE_VERSION=312 $(WARN) -g -I.
OPT     ?= -O2
SAN     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# pkg-config is only asked once the packages are there (see deps).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)

RAFT_SRC   := $(wildcard raft/*.c)
BROKER_SRC := $(filter-out broker/main.c,$(wildcard broker/*.c broker/net/*.c broker/kafka/*.c))
FS_SRC     := $(wildcard fs/*.c)
LIB_SRC    := $(BROKER_SRC) $(FS_SRC) $(RAFT_SRC)
UNIT_SRC   := $(wildcard tests/unit/*.c)
HDRS       := $(wildcard raft/*.h broker/*.h broker/net/*.h broker/kafka/*.h fs/*.h tests/unit/*.h)

MK         := $(BUILD)/minikafka
MK_ASAN    := $(BUILD)/asan/minikafka
UNIT       := $(BUILD)/unit-tests
UNIT_ASAN  := $(BUILD)/asan/unit-tests

TEST_TARGETS :=

.PHONY: all deps run cluster test unit unit-asan unit-valgrind clean format install
all: deps $(MK)

deps:
	@sh tests/install-deps.sh

# --- objects: one tree per flavour -------------------------------------------
$(BUILD)/obj/%.o: %.c $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SAN) $(PKG_CFLAGS) -c $< -o $@

LIB_OBJ       := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_OBJ_ASAN  := $(LIB_SRC:%.c=$(BUILD)/asan/obj/%.o)
UNIT_OBJ      := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ_ASAN := $(UNIT_SRC:%.c=$(BUILD)/asan/obj/%.o)

$(MK): $(BUILD)/obj/broker/main.o $(LIB_OBJ)
	$(CC) $(OPT) -o $@ $^ $(PKG_LIBS) -lm

$(MK_ASAN): $(BUILD)/asan/obj/broker/main.o $(LIB_OBJ_ASAN)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS) -lm

$(UNIT): $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(OPT) -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS) -lm

$(UNIT_ASAN): $(UNIT_OBJ_ASAN) $(LIB_OBJ_ASAN)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS) -lm

# --- tests -------------------------------------------------------------------
# Criterion forks a process per test; --jobs 2 matches the CI machine.
unit: deps $(UNIT)
	@$(UNIT) --jobs 2 >$(BUILD)/unit.log 2>&1; rc=$$?; cat $(BUILD)/unit.log; [ $$rc -eq 0 ] || exit $$rc; \
	  if grep -q 'exited during its setup or teardown' $(BUILD)/unit.log; then \
	    echo "unit: a test crashed in its setup or teardown (above)"; exit 1; fi

# Criterion counts a test whose sanitizer report came from another thread,
# or in its teardown, as passed: any report in the output fails the run too.
unit-asan: deps $(UNIT_ASAN)
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(UNIT_ASAN) --jobs 2 >$(BUILD)/unit-asan.log 2>&1; rc=$$?; cat $(BUILD)/unit-asan.log; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|exited during its setup or teardown' \
	    $(BUILD)/unit-asan.log; then echo "unit-asan: a sanitizer report or a crash in a teardown (above)"; exit 1; fi

# valgrind follows Criterion's test children; any leak or error fails the run.
unit-valgrind: deps $(UNIT)
	valgrind -q --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --error-exitcode=99 $(UNIT) --jobs 1

TEST_TARGETS += unit unit-asan unit-valgrind

-include raft/raft.mk
-include tests/e2e/e2e.mk
-include tests/chaos/chaos.mk
-include tests/chaos/chaos-run.mk
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk

test: all $(MK_ASAN)
	@set -e; for t in $(TEST_TARGETS); do \
	  echo "=== make $$t"; $(MAKE) --no-print-directory $$t; done; \
	echo "=== all tests passed: $(TEST_TARGETS)"

# --- running -----------------------------------------------------------------
RUN_DATA ?= $(HOME)/.local/share/minikafka
RUN_MNT  ?= /tmp/minikafka-$(shell id -un)
RUN_OPTS ?=
run: all
	@mkdir -p $(RUN_DATA) $(RUN_MNT)
	@echo "minikafka: data dir $(RUN_DATA), mounted on $(RUN_MNT) (Ctrl-C unmounts)"
	$(MK) -f $(if $(RUN_OPTS),-o $(RUN_OPTS)) $(RUN_DATA) $(RUN_MNT)

# Three local nodes on 127.0.0.1-3 (tests/cluster.sh: -n, -p, -d, -m, -o).
CLUSTER_ARGS ?=
cluster: all
	@bash tests/cluster.sh $(CLUSTER_ARGS)

PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(MK) $(DESTDIR)$(PREFIX)/bin/minikafka

format:
	clang-format -i $(wildcard raft/*.[ch] broker/*.[ch] broker/net/*.[ch] broker/kafka/*.[ch] fs/*.[ch] tests/unit/*.[ch])

clean:
	rm -rf $(BUILD)
