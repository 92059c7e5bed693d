# zan: one GNU make file. Outputs go under build/ (build/san with SAN set).
#   make            library and tools
#   make check      unit + integration tests, static-link check, lint, layer check
#   make check SAN=address,undefined
#   make run        the demo server on 127.0.0.1
#   make bench      benchmarks (not part of check)
#   make install / uninstall   (PREFIX, DESTDIR; systemd units under PREFIX/lib/systemd/system)

PREFIX  ?= /usr/local
DESTDIR ?=
CXX     ?= g++
AR      ?= ar
CXXFLAGS ?= -O2 -g
LDFLAGS ?=

ifneq ($(SAN),)
B ?= build/san
SANFLAGS = -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B ?= build
SANFLAGS =
endif

# User CXXFLAGS/LDFLAGS come last and win.
ZAN_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -pthread -I. $(SANFLAGS) $(CXXFLAGS)
ZAN_LDFLAGS  = -pthread $(SANFLAGS) $(LDFLAGS)

LIB_SRCS  := $(sort $(wildcard zan/*.cc))
LIB_OBJS  := $(patsubst %.cc,$(B)/%.o,$(LIB_SRCS))
TOOL_SRCS := $(sort $(wildcard tools/*.cc))
TOOLS     := $(patsubst tools/%.cc,$(B)/tools/%,$(TOOL_SRCS))
# The test binary: every t/*.cc but the programs of their own.
TEST_SRCS := $(sort $(filter-out t/example_echo.cc t/example_tcp_client.cc t/example_http_client.cc t/example_http_proxy.cc t/static_link.cc,$(wildcard t/*.cc)))
TEST_OBJS := $(patsubst %.cc,$(B)/%.o,$(TEST_SRCS))
HEADERS   := $(sort $(wildcard zan/*.h))
MANPAGES  := $(sort $(wildcard man/*.[137]))
# Example systemd units, installed where systemd looks under PREFIX with
# ExecStart= pointing at PREFIX/bin.
UNITS     := $(sort $(wildcard share/systemd/*.service share/systemd/*.socket))

.PHONY: all lib tools check test prereqs static-check lint layers run bench install uninstall clean fuzz fuzz-replay valgrind
all: lib tools
lib: $(B)/libzan.a
tools: $(TOOLS)

$(B)/libzan.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/zan/%.o: zan/%.cc
	@mkdir -p $(@D)
	$(CXX) $(ZAN_CXXFLAGS) -MMD -MP -c $< -o $@

$(B)/tools/%.o: tools/%.cc
	@mkdir -p $(@D)
	$(CXX) $(ZAN_CXXFLAGS) -MMD -MP -c $< -o $@

$(B)/tools/%: $(B)/tools/%.o $(B)/libzan.a
	$(CXX) $< -o $@ $(B)/libzan.a $(ZAN_LDFLAGS)

$(B)/t/%.o: t/%.cc
	@mkdir -p $(@D)
	$(CXX) $(ZAN_CXXFLAGS) -DZAN_BUILD_DIR='"$(abspath $(B))"' -DZAN_SRC_DIR='"$(CURDIR)"' -MMD -MP -c $< -o $@

$(B)/t/zan_test: $(TEST_OBJS) $(B)/libzan.a
	$(CXX) $(TEST_OBJS) -o $@ $(B)/libzan.a -lgtest $(ZAN_LDFLAGS)

-include $(LIB_OBJS:.o=.d) $(TOOLS:=.d) $(TEST_OBJS:.o=.d)

# Build prerequisites: installed with apt-get when missing and we are root.
prereqs:
	@sh t/prereqs.sh

# Everything runs in sequence (the steps share build outputs), but each
# build step itself is parallel under -j.
# Build steps under check run JOBS-way parallel (make check -j is not needed).
JOBS ?= 2
# Every wall-clock limit of the tests is multiplied by TEST_TIME_SCALE
# (ZAN_TEST_TIME_SCALE in their environment): sanitizers and valgrind
# make the code that much slower. Each test has a deadline of 120 s times
# that scale (the watchdog of t/main.cc), and the whole suite runs under
# timeout(1), so a hang is always a named failure, never a CI time-out.
ifneq ($(SAN),)
TEST_TIME_SCALE ?= 3
else
TEST_TIME_SCALE ?= 1
endif
VALGRIND_TIME_SCALE ?= 10
TEST_LIMIT_S = $(shell awk 'BEGIN { printf "%d", 1200 * $(1) }')
test: prereqs
	@$(MAKE) --no-print-directory -j$(JOBS) all $(B)/t/zan_test $(B)/t/example_echo $(B)/t/example_tcp_client $(B)/t/example_http_client $(B)/t/example_http_proxy
	ZAN_TEST_TIME_SCALE=$(TEST_TIME_SCALE) timeout -k 10 $(call TEST_LIMIT_S,$(TEST_TIME_SCALE)) $(B)/t/zan_test

check: test
	@$(MAKE) --no-print-directory fuzz-replay
	@if [ -n "$(SAN)" ]; then echo "static-check: skipped with SAN (sanitizer runtimes do not link -static)"; \
	 else sh t/static_check.sh "$(B)" "$(CXX)"; fi
	@$(MAKE) --no-print-directory lint layers
	@echo "make check: all checks passed"

# The HTTP parser fuzz target (requests and responses). `make fuzz` builds it with clang's libFuzzer
# and runs it (FUZZ_TIME seconds, new inputs in build/fuzz/new); `make
# check` replays the seed corpus through the same entry point without
# libFuzzer.
FUZZ_SRCS = zan/http_parser.cc zan/http_parser_body.cc zan/http_parser_load.cc zan/http_parser_response.cc \
            zan/http_message.cc zan/http_request.cc
FUZZ_TIME ?= 60
fuzz:
	@sh t/prereqs.sh fuzz
	@mkdir -p build/fuzz/new
	clang++ -std=c++17 -g -O1 -I. -fsanitize=fuzzer,address,undefined t/fuzz/http_parser_fuzz.cc $(FUZZ_SRCS) -o build/fuzz/http_parser_fuzz
	build/fuzz/http_parser_fuzz -max_total_time=$(FUZZ_TIME) -max_len=4096 build/fuzz/new t/fuzz/corpus

$(B)/t/fuzz_replay: t/fuzz/http_parser_fuzz.cc t/fuzz/replay_main.cc $(B)/libzan.a
	@mkdir -p $(@D)
	$(CXX) $(ZAN_CXXFLAGS) t/fuzz/http_parser_fuzz.cc t/fuzz/replay_main.cc -o $@ $(B)/libzan.a $(ZAN_LDFLAGS)

fuzz-replay: $(B)/t/fuzz_replay
	@$(B)/t/fuzz_replay t/fuzz/corpus

# Unit tests (no servers) under valgrind: no leaks, no invalid accesses.
valgrind: $(B)/t/zan_test
	@sh t/prereqs.sh valgrind
	ZAN_TEST_TIME_SCALE=$(VALGRIND_TIME_SCALE) timeout -k 10 $(call TEST_LIMIT_S,$(VALGRIND_TIME_SCALE)) \
	  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  $(B)/t/zan_test --gtest_filter='-Server*:HttpServer*:HttpProxy*:HttpConformance.Live*:AccessLogTest*:AccessLogStart*:AccessLogLibrary*:EchodHeartbeat*:LoadBalancer*:Drain*'

# The man-page examples (zan_tcp_server(3), zan_tcp_client(3),
# zan_http_client(3), zan_http_proxy(3)) must compile and link; the
# tests run the last three.
$(B)/t/example_echo $(B)/t/example_tcp_client $(B)/t/example_http_client $(B)/t/example_http_proxy: $(B)/t/%: t/%.cc $(B)/libzan.a
	@mkdir -p $(@D)
	$(CXX) $(ZAN_CXXFLAGS) $< -o $@ $(B)/libzan.a $(ZAN_LDFLAGS)

# Install into a temporary DESTDIR, build a -static program against the
# installed headers and library, and let the binary prove it is static.
static-check: all
	@sh t/static_check.sh "$(B)" "$(CXX)"

lint: prereqs
	@if [ -n "$(MANPAGES)" ]; then mandoc -Tlint -Wwarning $(MANPAGES) && echo "mandoc: $(words $(MANPAGES)) pages clean"; fi

# A file includes headers only from its own layer or lower ones.
layers:
	@sh t/layers.sh

run: all
	@sh t/run_demo.sh "$(B)"

bench: all
	@sh tools/bench.sh "$(B)"

install: all
	install -d $(DESTDIR)$(PREFIX)/include/zan $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/zan/
	install -m 644 $(B)/libzan.a $(DESTDIR)$(PREFIX)/lib/
	$(if $(TOOLS),install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/)
	for s in 1 3 7; do \
	  pages=$$(ls man/*.$$s 2>/dev/null); [ -z "$$pages" ] && continue; \
	  install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
	  install -m 644 $$pages $(DESTDIR)$(PREFIX)/share/man/man$$s/; \
	done
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	for u in $(UNITS); do \
	  sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/} && \
	  chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$${u##*/}; \
	done
	printf 'prefix=%s\nincludedir=$${prefix}/include\nlibdir=$${prefix}/lib\n\nName: zan\nDescription: multi-process TCP and HTTP server toolkit\nVersion: 0.1.0\nCflags: -std=c++17 -I$${includedir} -pthread\nLibs: -L$${libdir} -lzan -pthread\n' \
	  '$(PREFIX)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/zan.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/zan
	rm -f $(DESTDIR)$(PREFIX)/lib/libzan.a $(DESTDIR)$(PREFIX)/lib/pkgconfig/zan.pc
	rm -f $(patsubst tools/%.cc,$(DESTDIR)$(PREFIX)/bin/%,$(TOOL_SRCS))
	rm -f $(patsubst share/systemd/%,$(DESTDIR)$(PREFIX)/lib/systemd/system/%,$(UNITS))
	rm -f $(foreach p,$(MANPAGES),$(DESTDIR)$(PREFIX)/share/man/man$(subst .,,$(suffix $(p)))/$(notdir $(p)))

clean:
	rm -rf build
