# make bench — minikafka against passthrough_ll and the raw local file system.
# Included by the top-level Makefile; see tests/bench/bench.sh for what is
# measured. Not part of TEST_TARGETS: timings are printed, never judged.
#
#   make bench                 full run (~9 min on 2 cores, ~15 GB scratch disk,
#                              then ~12 min for the cluster section)
#   make bench BENCH_QUICK=1   smoke run (~35 s: 50 MB, 1 repetition, 1 GB start-up,
#                              then ~1.5-2 min for the cluster section)
#   make bench BENCH_CLUSTER=only | BENCH_CLUSTER=0   only / without the cluster section
#   make bench BENCH_KAFKA=only | BENCH_KAFKA=0       only / without the Kafka section
#                              (kload on librdkafka against Redis Streams; ~6 min,
#                              quick ~1 min)

BENCH_DIR   := $(BUILD)/bench
BENCH_TOOLS := $(addprefix $(BENCH_DIR)/,writer checklog genlines waitsize ackloop kload)
# libfuse's example, compiled straight from Debian's copy: never vendored here.
PASSTHROUGH_SRC := /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
PASSTHROUGH     := $(BENCH_DIR)/passthrough_ll

.PHONY: bench bench-tools
bench-tools: $(BENCH_TOOLS) $(PASSTHROUGH)

$(BENCH_DIR)/%: tests/bench/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -pthread $< -o $@

# The Kafka load generator links Debian's librdkafka (librdkafka-dev).
$(BENCH_DIR)/kload: tests/bench/kload.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -pthread $< -o $@ $(shell pkg-config --cflags --libs rdkafka 2>/dev/null)

$(PASSTHROUGH): $(PASSTHROUGH_SRC) | deps
	@mkdir -p $(dir $@)
	$(CC) -Wall $(OPT) $< $(shell pkg-config fuse3 --cflags --libs 2>/dev/null) -o $@

bench: all bench-tools
	BENCH_BIN=$(BENCH_DIR) MK=$(MK) bash tests/bench/bench.sh
