# tests/chaos/chaos-run.mk — the chaos driver's targets (included by ../../Makefile).
#
#   make chaos                 tests/chaos/run.sh for 3 nodes, then 5, 300 s of faults each
#   make chaos-short           the same with 60 s each (for make test, later)
#   make chaos CHAOS_NODES=3 CHAOS_SECS=120 CHAOS_SEED=42
#   make chaos CHAOS_MK=build/asan/minikafka      against the ASan build
#   make chaos CHAOS_ARGS="-f kill,pause,corrupt -t 3x4"   more run.sh options
#
# Every run keeps its run dir build/chaos/run-SEED-Nn (the schedule, the logs,
# check.py's report); a failing one keeps the data dirs too.  All runs are
# made; the target fails if any failed.  Needs root, FUSE and iptables
# (run.sh fails, never skips, without them).  The cwriter/creader rules are
# in tests/chaos/chaos.mk.

CHAOS_NODES ?= 3 5
CHAOS_SECS  ?= 300
CHAOS_SEED  ?=
CHAOS_MK    ?= $(MK)
CHAOS_ARGS  ?=
CHAOS_COMMA := ,
CHAOS_RUN_TOOLS := $(BUILD)/chaos/cwriter $(BUILD)/chaos/creader

.PHONY: chaos chaos-short
chaos: deps $(CHAOS_MK) $(CHAOS_RUN_TOOLS)
	@rc=0; for n in $(CHAOS_NODES); do \
	  echo "=== chaos: $$n nodes, $(CHAOS_SECS) s$(if $(CHAOS_SEED),$(CHAOS_COMMA) seed $(CHAOS_SEED))"; \
	  MK=$(CHAOS_MK) CHAOS_BIN=$(BUILD)/chaos bash tests/chaos/run.sh -n $$n -d $(CHAOS_SECS) \
	    $(if $(CHAOS_SEED),-s $(CHAOS_SEED)) $(CHAOS_ARGS) || rc=1; \
	done; exit $$rc

chaos-short:
	@$(MAKE) --no-print-directory chaos CHAOS_SECS=60

# In make test (CI), bounded: the checker's own test; one run of 3 nodes and
# one of 5 with fixed seeds (make chaos explores random ones); and the
# mutants of tests/chaos/mutants.py, each of which must be caught.
CHAOS_CI_SECS ?= 40
.PHONY: chaos-ci chaos-mutants
chaos-ci: deps $(MK) $(CHAOS_RUN_TOOLS)
	@rc=0; for spec in 3:101 5:102; do n=$${spec%%:*}; s=$${spec##*:}; \
	  echo "=== chaos-ci: $$n nodes, seed $$s, $(CHAOS_CI_SECS) s"; \
	  MK=$(MK) CHAOS_BIN=$(BUILD)/chaos bash tests/chaos/run.sh -n $$n -s $$s -d $(CHAOS_CI_SECS) \
	    -o $(BUILD)/chaos/ci-$$s-$${n}n || rc=1; \
	done; exit $$rc

# Each mutant is tried at the seed that caught it last (mutants.py), then
# at seeds 1..CHAOS_MUTANT_SEEDS until caught; a survivor fails the build.
CHAOS_MUTANT_SEEDS ?= 2
chaos-mutants: deps $(CHAOS_RUN_TOOLS)
	@bash tests/chaos/mutants.sh -n 3 -d 30 -S $(CHAOS_MUTANT_SEEDS)

# chaos-mutants (about 15 min for the six) is run by hand before an issue is
# closed (tests/chaos/README.md), not in make test: CI's budget.
TEST_TARGETS += chaos-check-test chaos-ci
