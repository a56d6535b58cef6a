/* Backend lookup by name, for --device. The CUDA backend is compiled in only where the build
 * found nvcc (the Makefile then defines BERTC_CUDA); elsewhere asking for it says so. */
#include <stdio.h>
#include <string.h>

#include "backend/ops.h"

const bertc_backend *bertc_backend_by_name(const char *name, char *why, size_t why_size) {
    if (!name || !*name || !strcmp(name, "cpu")) return bertc_backend_cpu();
    if (!strcmp(name, "cuda") || !strncmp(name, "cuda:", 5)) {
#ifdef BERTC_CUDA
        return bertc_backend_cuda(name[4] == ':' ? name + 5 : NULL, why, why_size);
#else
        snprintf(why, why_size, "--device %.32s: this bertc was built without CUDA (no nvcc found at build time)", name);
        return NULL;
#endif
    }
    snprintf(why, why_size, "--device %.64s: unknown device (cpu or cuda)", name);
    return NULL;
}
