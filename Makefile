# bertc build. `make` builds ./bertc (and the CUDA backend where nvcc is found, once it exists);
# `make test` builds and runs every tests/test_*.c; `make asan` builds the same under sanitizers.

CC      ?= cc
PKGS    := libutf8proc libarchive libcjson
OPT     ?= -O2 -march=native
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -D_GNU_SOURCE -fno-math-errno -fopenmp -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lopenblas -lm -fopenmp
# oneDNN (libdnnl-dev) runs the bf16 matrix products (AVX512-BF16 / AMX kernels); without it
# --precision bf16 still works, on the fallback (bf16 widened to fp32, OpenBLAS). DNNL=0 leaves it out.
DNNL    ?= $(shell test -f /usr/include/oneapi/dnnl/dnnl.h && echo 1)
ifeq ($(DNNL),1)
CFLAGS  += -DBERTC_HAVE_DNNL
LDLIBS  += -ldnnl
endif
# bertc bench records the engine's sgemm calls (src/bench/gemm_trace.h).
LDLIBS  += -Wl,--wrap=cblas_sgemm

BUILD   ?= build
BIN     ?= bertc
# The IMDB release beside the checkout, when it is there (tests that read it skip otherwise).
IMDB    ?= $(wildcard ../shared/data/aclImdb_v1.tar.gz)
LIB_SRC := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC:= $(sort $(wildcard tests/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

all: $(BIN)

$(BIN): $(CLI_OBJ) $(BUILD)/libbertc.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libbertc.a $(LDLIBS)

$(BUILD)/libbertc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libbertc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbertc.a $(LDLIBS) -lcmocka

tests: $(TESTS) $(BIN)

test: tests
	@BERTC=./$(BIN) BUILD=$(BUILD) BERTC_IMDB=$(IMDB) sh tests/run.sh $(TESTS) "sh tests/test_cli.sh ./$(BIN)" "sh tests/test_resume_kill.sh ./$(BIN)" "sh tests/test_report_chromium.sh ./$(BIN)"

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build folder.
asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bertc \
	    OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# The matrix-product microbenchmark (docs/PERFORMANCE.md, "bf16"): OpenBLAS, BLIS (libblis-dev)
# and oneDNN on the shapes of a BERT training step.
BLIS_DIR ?= /usr/lib/x86_64-linux-gnu/blis-openmp
gemm-bench: $(BUILD)/bench/gemm_bench
$(BUILD)/bench/gemm_bench: bench/gemm_bench.c $(BUILD)/libbertc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -isystem /usr/include/x86_64-linux-gnu/blis-openmp -o $@ $< $(BUILD)/libbertc.a $(LDLIBS) \
	    -ldnnl -L$(BLIS_DIR) -Wl,-rpath,$(BLIS_DIR) -lblis

# The link flags of build/libbertc.a, for scripts that build their own programs against it.
ldlibs:
	@echo $(LDLIBS)

clean:
	rm -rf build build-asan bertc

# The CPU benchmark: bertc (and PyTorch + transformers when installed) on the bert-base and MiniLM
# shapes, a Markdown report on stdout (bench/run.sh --help; e.g. make bench BENCH_ARGS="--threads 2 --save").
bench: $(BIN)
	sh bench/run.sh --bertc ./$(BIN) $(BENCH_ARGS)

.PHONY: bench

.PHONY: all tests test asan clean gemm-bench ldlibs
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
