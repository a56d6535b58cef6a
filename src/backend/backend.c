/* Backend lookup by name, for --device. The CUDA backend is a plug-in (libbertc_cuda.so, built
 * where the build found nvcc, which then defines BERTC_CUDA and BERTC_CUDA_SO, its path): it is
 * loaded only when asked for, so the CUDA libraries never slow bertc's start and bertc still runs
 * where they are missing. Elsewhere asking for it says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef BERTC_CUDA
#include <dlfcn.h>
#endif

#include "backend/ops.h"

#ifdef BERTC_CUDA
typedef const bertc_backend *(*cuda_entry)(const char *math, char *why, size_t why_size);

/* Tries BERTC_CUDA_LIB, the build's own path, then libbertc_cuda.so beside the executable and in
 * its build/ folder. */
static cuda_entry load_cuda(char *why, size_t why_size) {
    static cuda_entry entry;
    if (entry) return entry;
    char exe_dir[4096] = "", beside[4200] = "", in_build[4200] = "";
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (n > 0) {
        exe_dir[n] = '\0';
        char *slash = strrchr(exe_dir, '/');
        if (slash) *slash = '\0';
        snprintf(beside, sizeof beside, "%s/libbertc_cuda.so", exe_dir);
        snprintf(in_build, sizeof in_build, "%s/build/libbertc_cuda.so", exe_dir);
    }
    const char *paths[] = {getenv("BERTC_CUDA_LIB"), BERTC_CUDA_SO, beside, in_build};
    const char *first_error = NULL;
    char error[512] = "";
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        if (!paths[i] || !*paths[i]) continue;
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            if (!first_error) {
                snprintf(error, sizeof error, "%s", dlerror());
                first_error = error;
            }
            continue;
        }
        entry = (cuda_entry)dlsym(h, "bertc_backend_cuda");
        if (entry) return entry;
        snprintf(error, sizeof error, "%s: no bertc_backend_cuda in it", paths[i]);
        first_error = error;
        dlclose(h);
    }
    snprintf(why, why_size, "--device cuda: cannot load the CUDA backend (%.400s)", first_error ? first_error : "not found");
    return NULL;
}
#endif

const bertc_backend *bertc_backend_by_name(const char *name, char *why, size_t why_size) {
    if (!name || !*name || !strcmp(name, "cpu")) return bertc_backend_cpu();
    if (!strcmp(name, "cuda") || !strncmp(name, "cuda:", 5)) {
#ifdef BERTC_CUDA
        cuda_entry entry = load_cuda(why, why_size);
        return entry ? entry(name[4] == ':' ? name + 5 : NULL, why, why_size) : NULL;
#else
        snprintf(why, why_size, "--device %.32s: this bertc was built without CUDA (no nvcc found at build time)", name);
        return NULL;
#endif
    }
    snprintf(why, why_size, "--device %.64s: unknown device (cpu or cuda)", name);
    return NULL;
}
