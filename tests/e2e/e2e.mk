# tests/e2e/e2e.mk — end-to-end tests on a real FUSE mount (included by ../../Makefile).
#
#   make e2e         every tests/e2e/t_*.sh against $(MK)
#   make e2e-asan    the same scripts against $(MK_ASAN), fewer crash rounds
#   make e2e E2E_ONLY=t_crash   run only the tests whose name matches
#
# The scripts need root-less FUSE (/dev/fuse, fusermount3); the full-disk test
# mounts a tmpfs and therefore needs root. See tests/e2e/lib.sh.

E2E_BIN     := $(BUILD)/e2e
E2E_HELPERS := $(E2E_BIN)/ackwriter
E2E_ONLY    ?=
# kafkajs for t_kafka.sh, from npm at the version tests/kafka/package.json
# pins, installed under build/ (never into the source tree).
E2E_NPM     := $(BUILD)/npm
E2E_KAFKAJS := $(E2E_NPM)/node_modules/kafkajs/package.json

$(E2E_BIN)/ackwriter: tests/e2e/ackwriter.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -o $@ $<

$(E2E_KAFKAJS): tests/kafka/package.json
	@mkdir -p $(E2E_NPM)
	cp tests/kafka/package.json $(E2E_NPM)/package.json
	npm install --no-audit --no-fund --prefix $(E2E_NPM)
	@touch $@

.PHONY: e2e e2e-asan e2e-helpers
e2e-helpers: $(E2E_HELPERS)

e2e: deps $(MK) $(E2E_HELPERS) $(E2E_KAFKAJS)
	MK=$(MK) E2E_BIN=$(E2E_BIN) E2E_NODE_MODULES=$(E2E_NPM)/node_modules CRASH_ROUNDS=$${CRASH_ROUNDS:-20} \
	  tests/e2e/run.sh $(E2E_ONLY)

e2e-asan: deps $(MK_ASAN) $(E2E_HELPERS) $(E2E_KAFKAJS)
	MK=$(MK_ASAN) E2E_BIN=$(E2E_BIN) E2E_NODE_MODULES=$(E2E_NPM)/node_modules CRASH_ROUNDS=$${CRASH_ROUNDS:-6} E2E_ASAN=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  tests/e2e/run.sh $(E2E_ONLY)

TEST_TARGETS += e2e e2e-asan
