# tbproxy — build, test, fuzz and bench.
#
#   make            build libtb, the tools and the benches (-Wall -Wextra -Werror -O2)
#   make test       build and run every test (installs missing Debian packages first)
#   make SAN=1 test the same under ASan+UBSan (separate build directory)
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make bench-verify   the Token Binding verify microbenchmark
#   make bench      tbproxy vs nginx, HAProxy, nghttpx (bench/README.md); about 2 minutes
#   make soak       10,000 connections + 1,000,000 requests + memory per idle connection (bench/soak)
#   make soak-ci    the short soak (tests/unit/test_soak.c) under ASan+UBSan
#   make deps       install the Debian packages the project needs (idempotent)
#   make format     clang-format every C file

CC      ?= cc
SAN     ?= 0
BUILD   ?= build
PKGS    := openssl jansson libconfig libmicrohttpd libnghttp2 libjwt libsystemd
DEPS    := gcc make pkg-config openssl libssl-dev libjansson-dev libcriterion-dev clang \
           libclang-rt-14-dev python3 libconfig-dev libmicrohttpd-dev node-llhttp curl \
           libnghttp2-dev nghttp2-client python3-h2 wrk libjwt-dev \
           libsystemd-dev prometheus testssl.sh slowhttptest

ifeq ($(SAN),1)
B       := $(BUILD)/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     := -O1 -g
else
B       := $(BUILD)/rel
SANFLAGS :=
OPT     := -O2 -g
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || \
                echo -lssl -lcrypto -ljansson -lconfig -lmicrohttpd -lnghttp2 -ljwt -lsystemd)
# llhttp 8.1 C sources as Debian ships them (node-llhttp), strict mode, no lenient flags
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS  ?= $(OPT)
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -I$(LLHTTP_INC) \
              $(PKG_CFLAGS) -DLLHTTP_STRICT_MODE=1 -MMD -MP
LDLIBS  := -Wl,--as-needed $(PKG_LIBS) -lpthread
LDFLAGS += $(SANFLAGS)

LIB_SRC   := $(wildcard src/lib/*.c)
LIB_OBJ   := $(LIB_SRC:src/lib/%.c=$(B)/lib/%.o)
LIBTB     := $(B)/libtb.a
PROXY_SRC := $(filter-out src/proxy/main.c,$(wildcard src/proxy/*.c))
PROXY_OBJ := $(PROXY_SRC:src/proxy/%.c=$(B)/proxy/%.o)
LLHTTP_SRC := $(wildcard $(LLHTTP_DIR)/*.c)
LLHTTP_OBJ := $(LLHTTP_SRC:$(LLHTTP_DIR)/%.c=$(B)/llhttp/%.o)
LIBTBP    := $(B)/libtbp.a
# client side (tbclient, tbbench, tests): URL, TLS connect, HTTP/1.1 and HTTP/2 client code
CLIENT_SRC := $(wildcard src/client/*.c)
CLIENT_OBJ := $(CLIENT_SRC:src/client/%.c=$(B)/client/%.o)
LIBTBC    := $(B)/libtbc.a
DAEMON    := $(if $(wildcard src/proxy/main.c),$(B)/bin/tbproxy)
TOOLS     := $(patsubst src/tools/%.c,$(B)/bin/%,$(wildcard src/tools/*.c))
BENCHES   := $(patsubst bench/bench_%.c,$(B)/bin/bench-%,$(wildcard bench/bench_verify.c)) \
             $(if $(wildcard bench/tbbench.c),$(B)/bin/tbbench)
TEST_SUPPORT_SRC := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT_SRC:tests/support/%.c=$(B)/tests/support/%.o)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps check-deps test fuzz fuzz-smoke bench-verify format clean certs run
all: $(LIBTB) $(LIBTBP) $(LIBTBC) $(DAEMON) $(TOOLS) $(BENCHES)

# --- dependencies ---------------------------------------------------------------------------
deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# --- library, tools, benches ----------------------------------------------------------------
$(B)/lib/%.o: src/lib/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(LIBTB): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(B)/tools/%.o: src/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc/client -Isrc/proxy -c $< -o $@

$(B)/client/%.o: src/client/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc/client -Isrc/proxy -c $< -o $@

$(LIBTBC): $(CLIENT_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

# every tool links libtbc, libtbp and libtb; --as-needed drops the libraries a tool does not use.
# A tool X may have more sources in src/tools/X/ (e.g. src/tools/tbtoken/jwt.c).
define TOOL_RULE
$(B)/bin/$(1): $(B)/tools/$(1).o $(patsubst src/tools/%.c,$(B)/tools/%.o,$(wildcard src/tools/$(1)/*.c)) $(LIBTBC) $(LIBTBP) $(LIBTB)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) $$^ -o $$@ $$(LDLIBS)
endef
$(foreach t,$(TOOLS:$(B)/bin/%=%),$(eval $(call TOOL_RULE,$(t))))

$(B)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -g $(SANFLAGS) -fPIC -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 -c $< -o $@

$(B)/proxy/%.o: src/proxy/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBTBP): $(PROXY_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(B)/bin/tbproxy: $(B)/proxy/main.o $(LIBTBP) $(LIBTB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(B)/bench/%.o: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc/client -Isrc/proxy -c $< -o $@

$(B)/bin/bench-verify: $(B)/bench/bench_verify.o $(LIBTB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

TBBENCH_OBJ := $(patsubst bench/%.c,$(B)/bench/%.o,$(wildcard bench/tbbench*.c))
$(B)/bin/tbbench: $(TBBENCH_OBJ) $(LIBTBC) $(LIBTBP) $(LIBTB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lm

bench-verify: $(B)/bin/bench-verify
	$(B)/bin/bench-verify

# --- tests ----------------------------------------------------------------------------------
$(B)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/support -Isrc/proxy -c $< -o $@

$(B)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/support -Isrc/proxy -Isrc/client -c $< -o $@

$(B)/tests/test_%: $(B)/tests/test_%.o $(TEST_SUPPORT_OBJ) $(LIBTBC) $(LIBTBP) $(LIBTB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

check-deps:
	@ok=1; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || ok=0; \
	done; [ $$ok = 1 ] || $(MAKE) --no-print-directory deps

test: check-deps
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@TB_BIN=$(abspath $(B)/bin) tests/run-tests $(TEST_BIN)

# --- fuzzing (clang + libFuzzer, always with ASan+UBSan) -------------------------------------
# libtb, the proxy and llhttp are compiled once into $(BUILD)/fuzz/obj with coverage
# instrumentation (-fsanitize=fuzzer-no-link); each target tests/fuzz/fuzz_X.c is linked with
# all of them. tests/fuzz/README.md lists the targets, their inputs and the figures reached.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc/proxy -I$(LLHTTP_INC) $(PKG_CFLAGS) \
               -DLLHTTP_STRICT_MODE=1 $(FUZZ_SAN)
FUZZ_OBJ    := $(LIB_SRC:src/lib/%.c=$(BUILD)/fuzz/obj/lib/%.o) \
               $(PROXY_SRC:src/proxy/%.c=$(BUILD)/fuzz/obj/proxy/%.o) \
               $(LLHTTP_SRC:$(LLHTTP_DIR)/%.c=$(BUILD)/fuzz/obj/llhttp/%.o)

$(BUILD)/fuzz/obj/lib/%.o: src/lib/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/obj/proxy/%.o: src/proxy/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $(WARN) -fsanitize=fuzzer $(filter-out %.h,$^) -o $@ $(LDLIBS)

.PHONY: fuzz-long
fuzz: $(FUZZ_BIN)

# Each target from its seed corpus tests/fuzz/corpus/<name>/ (and tests/fuzz/<name>.dict), new
# inputs kept in $(BUILD)/fuzz/corpus-fuzz_<name>/, crashes in $(BUILD)/fuzz/crashes-fuzz_<name>/,
# the log in $(BUILD)/fuzz/corpus-fuzz_<name>.log; one summary line per target (executions,
# coverage); fails when a target found a crash, leak or timeout. FUZZ_TARGETS="cookie jwt" picks;
# FUZZ_FLAGS adds libFuzzer options ("-fork=1 -ignore_crashes=1": go on past a known crash).
# fuzz-smoke: FUZZ_SECONDS each, one after the other (CI: 30 s).
FUZZ_SECONDS ?= 30
fuzz-smoke: fuzz
	@tests/fuzz/run-fuzz --bin $(BUILD)/fuzz --seconds $(FUZZ_SECONDS) --jobs 1 \
	    --flags "$(FUZZ_FLAGS)" $(FUZZ_TARGETS)

# fuzz-long: FUZZ_LONG_SECONDS (default one hour) each, FUZZ_JOBS targets at a time (default:
# one per core), for hours of fuzzing; the corpus grows across runs.
FUZZ_LONG_SECONDS ?= 3600
FUZZ_JOBS ?= $(shell nproc)
fuzz-long: fuzz
	@tests/fuzz/run-fuzz --bin $(BUILD)/fuzz --seconds $(FUZZ_LONG_SECONDS) --jobs $(FUZZ_JOBS) \
	    --flags "$(FUZZ_FLAGS)" $(FUZZ_TARGETS)

-include $(FUZZ_OBJ:.o=.d)

# --- the comparison with nginx, HAProxy and nghttpx (bench/README.md) -------------------------
BENCH_DEPS := nginx haproxy nghttp2-proxy gnuplot-nox

.PHONY: bench bench-deps
bench-deps:
	@$(MAKE) --no-print-directory deps DEPS="$(BENCH_DEPS)"

# always the optimised build, whatever SAN says
bench: check-deps bench-deps
	@$(MAKE) --no-print-directory all SAN=0
	bench/compare --bin $(abspath $(BUILD)/rel/bin)

# --- soak: 10,000 connections, 1,000,000 requests, memory per idle connection (issue 8) -------
# soak: bench/soak on this build ($(B): SAN=1 soaks the ASan+UBSan build, LeakSanitizer at the
# proxy's exit), the report in bench/results/soak-<date>[-san].md; SOAK_ARGS passes options
# ("--conns 2000 --requests 200000", "--phases rss"). soak-ci: the short variant that make test
# also runs (tests/unit/test_soak.c), on its own, under ASan+UBSan.
SOAK_ARGS ?=
.PHONY: soak soak-ci
soak: check-deps
	@$(MAKE) --no-print-directory all
	bench/soak --bin $(abspath $(B)/bin) \
	    --out bench/results/soak-$$(date +%F)$(if $(filter 1,$(SAN)),-san).md $(SOAK_ARGS)

soak-ci: check-deps
	@$(MAKE) --no-print-directory SAN=1 all $(BUILD)/san/tests/test_soak
	@TB_BIN=$(abspath $(BUILD)/san/bin) tests/run-tests $(BUILD)/san/tests/test_soak

# --- running it -----------------------------------------------------------------------------
# dev CA + localhost server certificate (P-256) in certs/, made once with the openssl CLI
certs:
	@certs/make-dev-certs certs

# the demo origin on 127.0.0.1:8080 and the proxy on 127.0.0.1:8443, in the foreground
run: check-deps
	@$(MAKE) --no-print-directory all certs
	@scripts/run-dev $(abspath $(B)/bin)

# --- housekeeping ---------------------------------------------------------------------------
format:
	clang-format -i $$(find src include tests bench -name '*.[ch]')

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(PROXY_OBJ:.o=.d) $(B)/proxy/main.d $(B)/bench/bench_verify.d $(CLIENT_OBJ:.o=.d) $(TBBENCH_OBJ:.o=.d) $(TEST_SUPPORT_OBJ:.o=.d) $(TEST_BIN:=.d) $(wildcard $(B)/tools/*.d $(B)/tools/*/*.d)
.SECONDARY:
