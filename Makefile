# copilot-gateway build.  `make` builds build/copilot-gateway.
# `make run` and `make test` install what is missing first (scripts/deps.sh).

CC      ?= gcc
PKGS    := libevent jansson libcurl yaml-0.1 libcrypto sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Isrc $(WARN) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lm -lpthread

SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC := $(shell find src -name '*.c' ! -name main.c | sort)
UNIT_SRC := $(shell find tests/unit -name 'test_*.c' 2>/dev/null | sort)

OBJ      := $(LIB_SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

.PHONY: all asan unit fuzz run test deps clean bench format
.PHONY: fuzz-long soak benches
all: build/copilot-gateway

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

build/copilot-gateway: $(OBJ) build/obj/src/main.o
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/asan/copilot-gateway: $(ASAN_OBJ) build/asan/obj/src/main.o
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

build/tests/%: tests/unit/%.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< $(OBJ) -o $@ $(LDLIBS) -lcmocka

build/asan/tests/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/unit $< $(ASAN_OBJ) -o $@ $(LDLIBS) -lcmocka

# How long a store write holds the event loop, checkpoints included (a report, not a test).
build/bench/store: bench/store.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(OBJ) -o $@ $(LDLIBS)

# What a policy decision and an audit write cost an agent's tool call (a report, not a test).
build/bench/policy: bench/policy.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(OBJ) -o $@ $(LDLIBS)

# What the per-key limiter costs a request: ns per limits_admit()+limits_done() (a report).
build/bench/limits: bench/limits.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(OBJ) -o $@ $(LDLIBS)

# What a key lookup and a usage row cost a request, and the usage report's time (a report).
build/bench/usage: bench/usage.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(OBJ) -o $@ $(LDLIBS)

# What finding a session and opening a new one cost with many idle sessions (a report).
build/bench/sessions: bench/sessions.c $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(OBJ) -o $@ $(LDLIBS)

# The C benchmarks are built by `make test` (not run) so that they never rot.
benches: build/bench/store build/bench/policy build/bench/limits build/bench/usage \
         build/bench/sessions
asan: build/asan/copilot-gateway $(ASAN_UNIT_BIN)
unit: $(UNIT_BIN) $(ASAN_UNIT_BIN)

# libFuzzer targets for the parsers we wrote (needs clang): the runtime's
# frame parser and the request translators (OpenAI chat, Anthropic messages,
# OpenAI Responses), the HTTP/1.1 request framing, the config file and the
# policy matcher (its bash line reader, paths and URLs).
FUZZ_CC    := clang -std=c11 -D_GNU_SOURCE -Isrc -g -O1 -fsanitize=fuzzer,address,undefined
FUZZ_UTIL  := src/util/buf.c src/util/xmalloc.c src/util/err.c
build/fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c src/rt/frame.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_chat: tests/fuzz/fuzz_chat.c src/api/chat.c src/api/common.c src/broker/conv.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_messages: tests/fuzz/fuzz_messages.c src/api/messages.c src/api/common.c src/broker/conv.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_responses: tests/fuzz/fuzz_responses.c src/api/responses.c src/api/responses_out.c src/api/chat.c src/api/common.c src/broker/conv.c src/util/util.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_http: tests/fuzz/fuzz_http.c src/http/http1.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $^ -o $@
build/fuzz/fuzz_cfg: tests/fuzz/fuzz_cfg.c src/agent/config.c src/policy/policy.c src/policy/shell.c src/util/cfg.c src/util/yaml.c src/util/util.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_router: tests/fuzz/fuzz_router.c src/http/router.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@
build/fuzz/fuzz_policy: tests/fuzz/fuzz_policy.c src/policy/policy.c src/policy/shell.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_audit_query: tests/fuzz/fuzz_audit_query.c src/http/audit_query.c src/http/usage_query.c src/util/tstamp.c src/util/util.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
build/fuzz/fuzz_keys: tests/fuzz/fuzz_keys.c src/keys/keyobj.c src/keys/prices.c src/keys/sealed.c src/util/tstamp.c src/util/util.c $(FUZZ_UTIL)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(PKG_CFLAGS) $^ -o $@ $(PKG_LIBS)
fuzz: build/fuzz/fuzz_frame build/fuzz/fuzz_chat build/fuzz/fuzz_messages build/fuzz/fuzz_responses \
      build/fuzz/fuzz_http build/fuzz/fuzz_cfg build/fuzz/fuzz_router build/fuzz/fuzz_policy \
      build/fuzz/fuzz_audit_query build/fuzz/fuzz_keys

deps:
	@bash scripts/deps.sh $(DEPS_MODE)

run:
	@bash scripts/deps.sh run
	@$(MAKE) --no-print-directory all
	./build/copilot-gateway serve $(ARGS)

# The builds use every core unless make was given -j already (CI runs plain `make test`).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(TEST_JOBS)) all asan unit fuzz benches
	@bash scripts/test.sh

bench:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	node bench/latency.mjs
	node bench/broker.mjs
	node bench/responses.mjs
	node bench/agent-tool.mjs

# Long fuzzing (not part of `make test`): every fuzz target for FUZZ_LONG_SECONDS (default
# 300) each, new coverage merged back into tests/fuzz/corpus/<name>/; see scripts/fuzz-long.sh.
fuzz-long:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory fuzz
	@bash scripts/fuzz-long.sh

# Soak bench (not part of `make test`): the gateway under a mixed load for SOAK_SECONDS
# (default 600), its memory and fds sampled; see bench/soak.mjs.  Writes build/soak.json.
soak:
	@bash scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	node bench/soak.mjs

format:
	clang-format -i $$(find src tests -name '*.[ch]')

clean:
	rm -rf build

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(UNIT_BIN:=.d) $(ASAN_UNIT_BIN:=.d) \
         build/obj/src/main.d build/asan/obj/src/main.d
