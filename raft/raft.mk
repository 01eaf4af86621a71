# raft/raft.mk -- Raft core: simulator, mutants, benchmark (included by ../Makefile).
#
#   make sim [SEEDS=N] [START=S] [JOBS=J]   run the deterministic simulator
#   make sim-mutants                        prove the checker catches known bugs
#   make raft-bench                         proposals/s of the core, no faults
#
# The simulator compiles the core's sources itself (no FUSE/libuv needed),
# so tests/sim/mutants.sh can build it against a mutated copy of raft/.

SEEDS ?= 6000
START ?= 0
JOBS  ?= 2
SIM_CFLAGS := $(BASEFLAGS) -O2
SIM_SRC    := tests/sim/sim.c
RAFT_HDRS  := $(wildcard raft/*.h)

$(BUILD)/sim/sim: $(SIM_SRC) $(RAFT_SRC) $(RAFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(SIM_CFLAGS) -o $@ $(SIM_SRC) $(RAFT_SRC)

$(BUILD)/sim/sim-asan: $(SIM_SRC) $(RAFT_SRC) $(RAFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(SAN) -o $@ $(SIM_SRC) $(RAFT_SRC)

$(BUILD)/sim/raft-bench: tests/sim/bench.c $(RAFT_SRC) $(RAFT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -O2 -DNDEBUG -o $@ tests/sim/bench.c $(RAFT_SRC)

.PHONY: sim sim-asan sim-mutants raft-bench
# The CI budget: SEEDS seeds over every fault mix and node count, then the
# same seed traced twice must print the same bytes, then a smaller run under
# ASan/UBSan.
sim: $(BUILD)/sim/sim $(BUILD)/sim/sim-asan
	$(BUILD)/sim/sim --seeds $(SEEDS) --start $(START) --jobs $(JOBS)
	@s=$$(( $(START) + 26 )); \
	 $(BUILD)/sim/sim --trace $$s > $(BUILD)/sim/trace.a; \
	 $(BUILD)/sim/sim --trace $$s > $(BUILD)/sim/trace.b; \
	 cmp -s $(BUILD)/sim/trace.a $(BUILD)/sim/trace.b && \
	 echo "sim: seed $$s (chaos, 7 nodes) replays byte for byte ($$(wc -l < $(BUILD)/sim/trace.a) trace lines)"
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/sim/sim-asan --seeds 600 --start $(START) --jobs $(JOBS) -q

sim-asan: $(BUILD)/sim/sim-asan
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/sim/sim-asan --seeds $(SEEDS) --start $(START) --jobs $(JOBS)

sim-mutants:
	@sh tests/sim/mutants.sh $(BUILD)/mutants

raft-bench: $(BUILD)/sim/raft-bench
	$(BUILD)/sim/raft-bench

TEST_TARGETS += sim sim-mutants
