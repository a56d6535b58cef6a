# bertc build. `make` builds ./bertc (and the CUDA backend where nvcc is found, once it exists);
# `make test` builds and runs every tests/test_*.c; `make asan` builds the same under sanitizers.

CC      ?= cc
PKGS    := libutf8proc libarchive libcjson
OPT     ?= -O2 -march=native
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -Wall -Wextra -D_GNU_SOURCE -fno-math-errno -fopenmp -Iinclude -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lopenblas -lm -fopenmp

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

$(BUILD)/%.o: %.c
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
	@BERTC=./$(BIN) BUILD=$(BUILD) BERTC_IMDB=$(IMDB) sh tests/run.sh $(TESTS) "sh tests/test_cli.sh ./$(BIN)" "sh tests/test_resume_kill.sh ./$(BIN)" "sh tests/test_report_chromium.sh ./$(BIN)" $(CUDA_EMU_TEST)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build folder.
asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bertc \
	    OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

clean:
	rm -rf build build-asan bertc

.PHONY: all tests test asan clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
