# tests/fuzz/fuzz.mk — libFuzzer targets of the cluster port and the Kafka port
# (included by ../../Makefile).
# See tests/fuzz/README.md.
#
#   make fuzz [FUZZ_SECS=300] [FUZZ_ONLY=wire|port|kafka]
#                     build, then fuzz each target FUZZ_SECS seconds, one after the
#                     other, over a work corpus in build/fuzz/corpus-* that starts from
#                     the committed tests/fuzz/corpus/* (never written to); prints the
#                     executions and coverage of each; fails on a crash (the input is
#                     in build/fuzz/artifacts/)
#   make fuzz-replay  every committed corpus file once through its target (in make test)
#   make fuzz-merge   adds what the work corpus covers beyond the committed one to
#                     tests/fuzz/corpus/* (libFuzzer -set_cover_merge=1)
#   make fuzz-corpus  rewrites the seed-* files of tests/fuzz/corpus/* (gen_corpus.c,
#                     gen_corpus_kafka.c)
#   make fuzz-build   the binaries only: build/fuzz/fuzz_wire, build/fuzz/fuzz_port,
#                     build/fuzz/fuzz_kafka

FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_CC     ?= clang
FUZZ_SECS   ?= 300
FUZZ_ONLY   ?= wire port kafka
FUZZ_PKGS   := libuv libxxhash libsodium
FUZZ_KPKGS  := $(FUZZ_PKGS) zlib snappy liblz4 libzstd
comma       := ,
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -g -O1 -fno-omit-frame-pointer \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
               $(shell pkg-config --cflags $(FUZZ_PKGS) 2>/dev/null)
FUZZ_LIBS    = $(shell pkg-config --libs $(FUZZ_PKGS) 2>/dev/null)
FUZZ_KLIBS   = $(shell pkg-config --libs $(FUZZ_KPKGS) 2>/dev/null)
# The kafka target links the whole broker: its objects are built one by one
# (instrumented, -fsanitize=fuzzer-no-link) under build/fuzz/obj/.
FUZZ_OBJ_CFLAGS = $(subst -fsanitize=fuzzer$(comma),-fsanitize=fuzzer-no-link$(comma),$(FUZZ_CFLAGS)) \
                  $(shell pkg-config --cflags $(FUZZ_KPKGS) 2>/dev/null)
FUZZ_CORPUS := tests/fuzz/corpus

FUZZ_wire_SRC := tests/fuzz/fuzz_wire.c broker/net/wire.c
FUZZ_port_SRC := tests/fuzz/fuzz_port.c broker/net/wire.c broker/net/netport.c broker/net/auth.c \
                 broker/log.c broker/config.c
FUZZ_kafka_SRC := tests/fuzz/fuzz_kafka.c $(BROKER_SRC) $(RAFT_SRC)
FUZZ_kafka_OBJ := $(FUZZ_kafka_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
# -max_len also bounds replayed files (longer ones would be cut: the kafka
# corpus's largest seed, 520 Fetches, is 30 KB).  The port and kafka targets
# silence the node's own log lines (-close_fd_mask=2: libFuzzer, sanitizer
# and oracle reports still print).  The kafka target's own stall oracles
# give up after 5 s each: its -timeout leaves room for two.
FUZZ_wire_OPTS := -max_len=4096 -timeout=10
FUZZ_port_OPTS := -max_len=8192 -timeout=10 -close_fd_mask=2
FUZZ_kafka_OPTS := -max_len=32768 -timeout=20 -close_fd_mask=2
FUZZ_ENV       := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1

$(FUZZ_DIR)/fuzz_wire: $(FUZZ_wire_SRC) $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_wire_SRC) $(FUZZ_LIBS)

$(FUZZ_DIR)/fuzz_port: $(FUZZ_port_SRC) $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_port_SRC) $(FUZZ_LIBS)

# The broker's own files are built without -Werror: clang warns where gcc
# does not (-Wlogical-not-parentheses, -Wself-assign), and they are not
# this fragment's to change.  broker/sysio.c initializes a struct from a
# const struct, a GCC extension clang refuses: it is built by $(CC),
# uninstrumented (system call wrappers, nothing to fuzz there).
$(FUZZ_DIR)/obj/%.o: %.c $(HDRS) tests/fuzz/fuzz.mk | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -Werror,$(FUZZ_OBJ_CFLAGS)) -c $< -o $@

$(FUZZ_DIR)/obj/tests/fuzz/%.o: tests/fuzz/%.c $(HDRS) tests/fuzz/fuzz.mk | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_OBJ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/obj/broker/sysio.o: broker/sysio.c $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O1 -c $< -o $@

$(FUZZ_DIR)/fuzz_kafka: $(FUZZ_kafka_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_kafka_OBJ) $(FUZZ_KLIBS) -lm

$(FUZZ_DIR)/gen_corpus: tests/fuzz/gen_corpus.c broker/net/wire.c $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -o $@ tests/fuzz/gen_corpus.c broker/net/wire.c $(FUZZ_LIBS)

GEN_KAFKA_SRC := tests/fuzz/gen_corpus_kafka.c broker/kafka/codec.c broker/kafka/crc32c.c \
                 broker/kafka/compress.c
$(FUZZ_DIR)/gen_corpus_kafka: $(GEN_KAFKA_SRC) $(HDRS) | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) $(shell pkg-config --cflags $(FUZZ_KPKGS) 2>/dev/null) -o $@ \
	  $(GEN_KAFKA_SRC) $(FUZZ_KLIBS)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-merge fuzz-corpus
fuzz-build: $(FUZZ_DIR)/fuzz_wire $(FUZZ_DIR)/fuzz_port $(FUZZ_DIR)/fuzz_kafka

# One target after the other (the CI machine has two cores, shared).
fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/artifacts; rc=0; \
	for t in $(FUZZ_ONLY); do \
	  case $$t in wire) opts="$(FUZZ_wire_OPTS)" ;; port) opts="$(FUZZ_port_OPTS)" ;; \
	    kafka) opts="$(FUZZ_kafka_OPTS)" ;; *) echo "fuzz: no target $$t"; exit 2 ;; esac; \
	  mkdir -p $(FUZZ_DIR)/corpus-$$t; log=$(FUZZ_DIR)/fuzz_$$t.log; \
	  echo "=== fuzz_$$t: $(FUZZ_SECS) s, log in $$log"; \
	  $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $$opts -max_total_time=$(FUZZ_SECS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	    $(FUZZ_DIR)/corpus-$$t $(FUZZ_CORPUS)/$$t >$$log 2>&1 || rc=1; \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' $$log | sed 's/^/  /'; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
	    $$log | sed 's/^/  /'; \
	  if grep -qE 'ERROR: |oracle failed|runtime error|Test unit written' $$log; then rc=1; \
	    grep -E 'ERROR: |oracle failed|runtime error|SUMMARY|Test unit written' $$log | sed 's/^/  /'; fi; \
	done; \
	[ $$rc -eq 0 ] || { echo "fuzz: a crash (above; inputs in $(FUZZ_DIR)/artifacts/)"; exit 1; }

# Every committed input once, no mutation: a regression test for the targets
# and for the code under them.
fuzz-replay: fuzz-build
	@for t in wire port kafka; do \
	  case $$t in wire) opts="$(FUZZ_wire_OPTS)" ;; port) opts="$(FUZZ_port_OPTS)" ;; \
	    kafka) opts="$(FUZZ_kafka_OPTS)" ;; esac; \
	  log=$(FUZZ_DIR)/replay_$$t.log; \
	  if ! $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $$opts -runs=0 -artifact_prefix=$(FUZZ_DIR)/replay-$$t- \
	      $(FUZZ_CORPUS)/$$t >$$log 2>&1 || \
	     grep -qE 'ERROR: |oracle failed|runtime error' $$log; then \
	    cat $$log; echo "fuzz-replay: fuzz_$$t failed on a committed input (above)"; exit 1; fi; \
	  echo "fuzz-replay: fuzz_$$t: $$(ls $(FUZZ_CORPUS)/$$t | wc -l) inputs, \
	$$(grep -oE 'cov: [0-9]+ ft: [0-9]+' $$log | tail -1)"; \
	done

# What the work corpus covers beyond the committed one, minimized (the
# greedy set cover of -merge=1's features), into the committed one (files
# named by their SHA-1).  The committed corpus stays under 200 KB: when it
# grows past that, delete its non-seed files and merge again.
fuzz-merge: fuzz-build
	@for t in $(FUZZ_ONLY); do \
	  case $$t in wire) opts="$(FUZZ_wire_OPTS)" ;; port) opts="$(FUZZ_port_OPTS)" ;; \
	    kafka) opts="$(FUZZ_kafka_OPTS)" ;; esac; \
	  mkdir -p $(FUZZ_DIR)/corpus-$$t; \
	  $(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t $$opts -set_cover_merge=1 $(FUZZ_CORPUS)/$$t \
	    $(FUZZ_DIR)/corpus-$$t >$(FUZZ_DIR)/merge_$$t.log 2>&1 || \
	    { tail -30 $(FUZZ_DIR)/merge_$$t.log; exit 1; }; \
	  echo "fuzz-merge: $$t: $$(grep -E 'MERGE-OUTER: [0-9]+ new files' $(FUZZ_DIR)/merge_$$t.log)"; \
	done; \
	kb=$$(cat $(FUZZ_CORPUS)/*/* | wc -c); kb=$$((kb / 1024)); \
	echo "fuzz-merge: $(FUZZ_CORPUS) holds $$kb KB"; \
	[ $$kb -lt 200 ] || echo "fuzz-merge: over 200 KB: delete the non-seed files and merge again"

fuzz-corpus: $(FUZZ_DIR)/gen_corpus $(FUZZ_DIR)/gen_corpus_kafka
	$(FUZZ_DIR)/gen_corpus $(FUZZ_CORPUS) $(FUZZ_CORPUS)/port
	$(FUZZ_DIR)/gen_corpus_kafka $(FUZZ_CORPUS)/kafka tests/fuzz/crashes

TEST_TARGETS += fuzz-replay
