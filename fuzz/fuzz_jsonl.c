/* libFuzzer entry point for fuzz_jsonl (fuzz/targets.c); built and run by `make fuzz`. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_jsonl(data, size);
    return 0;
}
