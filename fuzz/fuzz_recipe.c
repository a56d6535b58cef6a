/* libFuzzer entry point for fuzz_recipe (fuzz/targets.c); built and run by `make fuzz`. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_recipe(data, size);
    return 0;
}
