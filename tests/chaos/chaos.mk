# tests/chaos/chaos.mk — the chaos harness's workload tools and the checker's
# own test (included by ../../Makefile). See tests/chaos/README.md.
#
#   make chaos-tools        build/chaos/cwriter and build/chaos/creader
#   make chaos-check-test   prove check.py bites (synthetic runs) and the tools
#                           work (on plain files); ~15 s, no FUSE needed
#
# The tools use libc only, so they do not wait for `deps`.

CHAOS_BIN   := $(BUILD)/chaos
CHAOS_TOOLS := $(CHAOS_BIN)/cwriter $(CHAOS_BIN)/creader

$(CHAOS_BIN)/cwriter: tests/chaos/cwriter.c tests/chaos/tool.h
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -o $@ $<

$(CHAOS_BIN)/creader: tests/chaos/creader.c tests/chaos/tool.h
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(OPT) -o $@ $<

.PHONY: chaos-tools chaos-check-test
chaos-tools: $(CHAOS_TOOLS)

chaos-check-test: $(CHAOS_TOOLS)
	CHAOS_BIN=$(CHAOS_BIN) bash tests/chaos/check_test.sh
