# tide: `make` builds build/tide and build/lua/tide/core.so; `make test` and `make demo` are
# the two commands a fresh Debian machine needs (both install missing packages first).
CC       ?= cc
BUILD    ?= build
PREFIX   ?= /usr/local
BLASDIR  := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLASINC  := /usr/include/x86_64-linux-gnu/openblas-openmp
LUAINC   := /usr/include/lua5.4

WARN     := -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wstrict-prototypes \
            -Wmissing-prototypes -Wdouble-promotion -Wvla
ifneq ($(CI)$(WERROR),)
WARN     += -Werror
endif
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT)
ALLFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fopenmp $(WARN) $(CFLAGS) -I$(BLASINC) -I$(LUAINC) -MMD -MP
BLAS     := -L$(BLASDIR) -Wl,-rpath,$(BLASDIR) -lopenblas
LIBS     := $(BLAS) -fopenmp -lm -lz

TENSOR_SRC := $(wildcard tensor/*.c tensor/ops/*.c tensor/io/*.c)
PROG_SRC   := vm/main.c vm/repl.c vm/history.c
CORE_SRC   := $(filter-out $(PROG_SRC),$(wildcard vm/*.c))
TEST_SRC   := $(wildcard tests/c/*.c)
DIST_SRC   := $(wildcard vm/dist/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
TENSOR_OBJ := $(call obj,$(TENSOR_SRC))
CORE_OBJ   := $(call obj,$(CORE_SRC))
PROG_OBJ   := $(call obj,$(PROG_SRC))
TEST_OBJ   := $(call obj,$(TEST_SRC))
DIST_OBJ   := $(call obj,$(DIST_SRC))

.PHONY: all deps test test-c test-lua check run bench demo install fixtures fuzz format lint clean
all: $(BUILD)/tide $(BUILD)/lua/tide/core.so $(BUILD)/lua/tide/dist.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

# GCC vectorises sqrt only without errno (its optimize attribute cannot turn errno off): the
# fused optimizer updates are ~4x slower with it.
$(BUILD)/obj/tensor/optim.o: ALLFLAGS += -fno-math-errno

# The program embeds Debian's liblua5.4; -Wl,-E lets C modules it loads find the Lua API.
$(BUILD)/tide: $(PROG_OBJ) $(CORE_OBJ) $(TENSOR_OBJ)
	$(CC) $(CFLAGS) -Wl,-E -o $@ $^ -llua5.4 -lreadline $(LIBS)

# The module for stock lua5.4 links no Lua: the host interpreter provides the API. It is never
# unloaded (-z nodelete): lua_close would otherwise unmap libgomp under its idle pool threads.
$(BUILD)/lua/tide/core.so: $(CORE_OBJ) $(TENSOR_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -Wl,-z,nodelete -o $@ $^ $(LIBS)

# tide.dist, the Open MPI binding, is a module of its own (loaded on first use of tide.dist, so
# a script that never distributes never maps libmpi); like core.so it links no Lua.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
$(DIST_OBJ): ALLFLAGS += $(MPI_CFLAGS)
$(BUILD)/lua/tide/dist.so: $(DIST_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -Wl,-z,nodelete -o $@ $^ $(MPI_LIBS) -ldl

$(BUILD)/test_c: $(TEST_OBJ) $(TENSOR_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lcriterion $(LIBS)

deps:
	@scripts/deps.sh scripts/deps.txt

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/test_c
	@BUILD=$(BUILD) T="$(T)" scripts/test.sh

check: deps
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  OPT="-O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  all build-asan/test_c
	@BUILD=build-asan SANITIZE=1 T="$(T)" scripts/test.sh

run: all
	@$(BUILD)/tide

bench: all
	@scripts/bench.sh

demo: deps all
	@scripts/demo.sh

fixtures:
	for f in scripts/gen_*fixtures.py; do /usr/bin/python3 $$f || exit 1; done

# make fuzz: libFuzzer (clang) on every tests/fuzz/fuzz_*.c for FUZZ_SECONDS each (or
# FUZZ_RUNS executions each when given), linked against the tensor/ sources built with ASan and
# UBSan into build-fuzz/ (fuzz_load also against vm/ and Lua: it runs the stdlib of this tree).
# A target's seed corpus is the files its "fuzz-seeds: <glob>" comments name, its extra
# libFuzzer flags a "fuzz-flags:" comment; findings are written to build-fuzz/. Not part of
# `make test`.
FUZZ_SECONDS ?= 60
FUZZ_LIMIT := $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -march=native -fno-omit-frame-pointer -fopenmp \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wno-pass-failed \
              -I$(BLASINC) -I$(LUAINC)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_PICK  := $(if $(FUZZ),$(filter %/fuzz_$(FUZZ).c,$(FUZZ_SRC)),$(FUZZ_SRC)) # FUZZ=load: one target
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_PICK))
FUZZ_OBJ   := $(patsubst %.c,build-fuzz/obj/%.o,$(TENSOR_SRC))

.SECONDARY: $(FUZZ_OBJ)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	clang $(FUZZ_FLAGS) -o $@ $^ $(LIBS)

build-fuzz/fuzz_load: $(patsubst %.c,build-fuzz/obj/%.o,$(CORE_SRC))
build-fuzz/fuzz_load: FUZZ_FLAGS += -DTIDE_TREE=$(CURDIR)
build-fuzz/fuzz_load: LIBS += -llua5.4

fuzz: $(FUZZ_BIN)
	@for src in $(FUZZ_PICK); do \
	  name=$$(basename $$src .c); corpus=build-fuzz/corpus/$$name; mkdir -p $$corpus; \
	  for f in $$(sed -n 's/.*fuzz-seeds: *\([^ ]*\).*/\1/p' $$src); do cp $$f $$corpus/ 2>/dev/null; done; \
	  echo "== $$name: $(FUZZ_LIMIT)"; \
	  build-fuzz/$$name $(FUZZ_LIMIT) $$(sed -n 's/.*fuzz-flags: *//p' $$src) -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/$$name- $$corpus 2>build-fuzz/$$name.log || \
	    { tail -n 60 build-fuzz/$$name.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::peak_rss' build-fuzz/$$name.log; \
	done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lua/5.4/tide \
	  $(DESTDIR)$(PREFIX)/share/lua/5.4 $(DESTDIR)$(PREFIX)/share/doc/tide
	install -m 755 $(BUILD)/tide $(DESTDIR)$(PREFIX)/bin/tide
	install -m 644 $(BUILD)/lua/tide/core.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/tide/core.so
	install -m 644 $(BUILD)/lua/tide/dist.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/tide/dist.so
	cp -r stdlib/tide $(DESTDIR)$(PREFIX)/share/lua/5.4/
	cp -r doc/. $(DESTDIR)$(PREFIX)/share/doc/tide/

format:
	clang-format -i $(TENSOR_SRC) $(CORE_SRC) $(PROG_SRC) $(TEST_SRC) $(DIST_SRC) $(wildcard tensor/*.h vm/*.h tensor/*/*.h vm/*/*.h)

lint:
	scripts/sz.sh
	luacheck -q stdlib tests/lua examples

clean:
	rm -rf build build-asan

-include $(TENSOR_OBJ:.o=.d) $(CORE_OBJ:.o=.d) $(DIST_OBJ:.o=.d) $(PROG_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) \
  $(patsubst %.c,build-fuzz/obj/%.d,$(CORE_SRC))
