# bertc build. `make` builds ./bertc (and the CUDA backend where nvcc is found, once it exists);
# `make test` builds and runs every tests/test_*.c; `make asan` builds the same under sanitizers.

CC      ?= cc
PKGS    := libutf8proc libarchive libcjson
OPT     ?= -O2 -march=native
CFLAGS  ?= $(OPT) -g
# -fno-trapping-math: bertc never reads the floating-point exception flags. Without it GCC will not
# vectorise a loop whose FP work sits under a condition (exp_vec's range test, erf's sign) unless
# the CPU has masked vector ops (AVX-512): on AVX2 the GELU and softmax loops ran scalar, 4-8x slower.
# It changes no result (no reassociation, unlike -ffast-math).
CFLAGS  += -std=c11 -Wall -Wextra -D_GNU_SOURCE -fno-math-errno -fno-trapping-math -fopenmp -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lopenblas -lm -fopenmp
# oneDNN (libdnnl-dev) runs the bf16 matrix products (AVX512-BF16 / AMX kernels); without it
# --precision bf16 still works, on the fallback (bf16 widened to fp32, OpenBLAS). DNNL=0 leaves it out.
DNNL    ?= $(shell test -f /usr/include/oneapi/dnnl/dnnl.h && echo 1)
ifeq ($(DNNL),1)
CFLAGS  += -DBERTC_HAVE_DNNL
LDLIBS  += -ldnnl -Wl,--wrap=dnnl_sgemm
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

# The CUDA backend (src/backend/cuda), built where nvcc is found (`make CUDA=0` leaves it out) as a
# plug-in, $(BUILD)/libbertc_cuda.so, that bertc loads only for --device cuda: the CUDA libraries
# cost nothing at start-up (cuBLAS takes ~0.4 s to load) and bertc runs where they are absent.
# Code for sm_90 (H100/H200) plus compute_80 PTX that newer GPUs compile at load time.
NVCC    ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
CUDA    ?= $(if $(NVCC),1,0)
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
# where libcudart.so is: lib64 in the usual toolkit, lib or targets/x86_64-linux/lib in others
CUDA_LIB ?= $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libcudart.so $(CUDA_HOME)/lib/libcudart.so \
              $(CUDA_HOME)/targets/x86_64-linux/lib/libcudart.so) $(CUDA_HOME)/lib64/)))
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80
NVFLAGS ?= -O3 -std=c++20 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-fPIC
CU_OBJ  := $(patsubst %.cu,$(BUILD)/%.o,$(sort $(wildcard src/backend/cuda/*.cu)))
CUDA_SO := $(BUILD)/libbertc_cuda.so
CFLAGS  += -DBERTC_CUDA -DBERTC_CUDA_SO='"$(abspath $(CUDA_SO))"'
LDLIBS  += -ldl
endif

all: $(BIN)

ifeq ($(CUDA),1)
$(CUDA_SO): $(CU_OBJ)
	$(NVCC) -shared -o $@ $(CU_OBJ) -L$(CUDA_LIB) -Xlinker -rpath,$(CUDA_LIB) -lcublas -lcudart
$(BIN) $(TESTS): $(CUDA_SO)
# The same kernels compiled by g++ over a CPU stand-in for CUDA and cuBLAS (backend/cuda/cuda_emu.h):
# `make test` runs test_cuda against it too, so the kernels are checked where there is no GPU.
CUDA_EMU_SO := $(BUILD)/libbertc_cuda_emu.so
CUDA_EMU_TEST := "env BERTC_CUDA_LIB=$(CUDA_EMU_SO) $(BUILD)/tests/test_cuda"
$(CUDA_EMU_SO): src/backend/cuda/ops_cuda.cu src/backend/cuda/cuda_emu.h src/backend/ops.h
	$(CXX) -std=c++20 -O2 -g -fPIC -shared -x c++ -DBERTC_CUDA_EMU -Wall -Wextra -Wno-unknown-pragmas -Iinclude -Isrc \
	    -o $@ $< -lopenblas
$(BUILD)/tests/test_cuda: $(CUDA_EMU_SO)
endif

$(BIN): $(CLI_OBJ) $(BUILD)/libbertc.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libbertc.a $(LDLIBS)

$(BUILD)/libbertc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Objects depend on the compile flags too: a pulled Makefile or another OPT= rebuilds them, where
# timestamps alone would keep objects built with the old flags. $(BUILD)/.cflags is rewritten (and
# so newer than every object) only when the flags differ from the last build's.
FLAGS_NOW := $(CC) $(CFLAGS)
ifneq ($(FLAGS_NOW),$(file <$(BUILD)/.cflags))
$(shell mkdir -p $(BUILD))
$(file >$(BUILD)/.cflags,$(FLAGS_NOW))
endif

$(BUILD)/%.o: %.c $(BUILD)/.cflags
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -Iinclude -Isrc -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libbertc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbertc.a $(LDLIBS) -lcmocka

tests: $(TESTS) $(BIN)

test: tests
	@BERTC=./$(BIN) BUILD=$(BUILD) BERTC_IMDB=$(IMDB) sh tests/run.sh $(TESTS) "sh tests/test_cli.sh ./$(BIN)" "sh tests/test_resume_kill.sh ./$(BIN)" "sh tests/test_report_chromium.sh ./$(BIN)" "sh tests/test_bad_inputs.sh ./$(BIN)" $(CUDA_EMU_TEST)

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

# The compile and link flags of build/libbertc.a, for scripts that build their own programs
# against it (scripts/bench-*.sh, check-minilm.sh), so that they cannot drift from the build's.
# cflags leaves out the CUDA library's path, whose quotes a shell would keep.
cflags:
	$(info $(filter-out -DBERTC_CUDA_SO=%,$(CFLAGS)))
	@:
ldlibs:
	@echo $(LDLIBS)

# The name issue #6 gives the sanitizer suite.
test-asan: asan

# A short train -> eval -> predict -> tokenize run under valgrind's memcheck (tests/valgrind_e2e.sh).
# valgrind cannot execute AVX-512, so this build is for a generic x86-64, in its own folder.
test-valgrind:
	$(MAKE) BUILD=build-valgrind BIN=build-valgrind/bertc OPT="-O1" build-valgrind/bertc
	sh tests/valgrind_e2e.sh build-valgrind/bertc

clean:
	rm -rf build build-asan bertc build-fuzz build-valgrind

# --------------------------------------------------------------------------------------------
# Fuzzing (docs/RELIABILITY.md, "Fuzzing"): one libFuzzer program per parser of outside input,
# build-fuzz/fuzz_NAME from fuzz/fuzz_NAME.c + fuzz/targets.c, built by clang with ASan + UBSan.
# Only the parser modules are compiled in (no OpenMP, BLAS or model code: none of it reads files).
# `make fuzz` runs every target for FUZZ_SECONDS each, FUZZ_PARALLEL at a time (fuzz/campaign.sh).
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 600
FUZZ_PARALLEL ?= 1
FUZZ_BUILD    ?= build-fuzz
FUZZ_NAMES    := $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS     := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_SRC  := $(sort $(wildcard src/util/*.c src/data/*.c src/tokenizer/*.c) src/model/safetensors.c src/model/config.c \
                   src/sweep/space.c src/sweep/objective.c)
FUZZ_LIB_OBJ  := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/fuzz/targets.o
FUZZ_CFLAGS   := -O1 -g -std=c11 -Wall -Wextra -D_GNU_SOURCE -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=all -Iinclude -Isrc -Ifuzz $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -fsanitize-coverage-ignorelist=fuzz/coverage_ignore.txt \
	    -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libbertc_fuzz.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_BUILD)/libbertc_fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libbertc_fuzz.a \
	    $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

# The regression test compiles the targets' bodies in (#include "../fuzz/targets.c").
$(BUILD)/tests/test_fuzz_regressions: fuzz/targets.c fuzz/targets.h

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_PARALLEL=$(FUZZ_PARALLEL) FUZZ_BUILD=$(FUZZ_BUILD) bash fuzz/campaign.sh $(FUZZ_NAMES)

# The CPU benchmark: bertc (and PyTorch + transformers when installed) on the bert-base and MiniLM
# shapes, a Markdown report on stdout (bench/run.sh --help; e.g. make bench BENCH_ARGS="--threads 2 --save").
bench: $(BIN)
	sh bench/run.sh --bertc ./$(BIN) $(BENCH_ARGS)

.PHONY: bench

.PHONY: all tests test asan clean gemm-bench cflags ldlibs fuzz fuzz-build test-asan test-valgrind
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(FUZZ_LIB_OBJ:.o=.d) $(CU_OBJ:.o=.d)
