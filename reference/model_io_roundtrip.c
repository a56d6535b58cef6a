/* Hand check of the model I/O against the Python libraries (not part of the build or tests).
 * Reads IN/model.safetensors and IN/config.json, writes OUT/ with every float tensor as F32,
 * the given labels, and vocab.txt copied; then reference/check_saved_model_io.py OUT LABELS...
 * loads it with safetensors and transformers.
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -o /tmp/model_io_roundtrip reference/model_io_roundtrip.c \
 *      build/libbertc.a -lcjson -lm
 *   /tmp/model_io_roundtrip IN OUT neg pos && python reference/check_saved_model_io.py OUT neg pos --compare IN */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "model/safetensors.h"
#include "util/fs.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s IN_DIR OUT_DIR LABEL...\n", argv[0]);
        return 2;
    }
    char in_st[4096], in_cfg[4096], in_vocab[4096], out_st[4096], out_cfg[4096], out_vocab[4096];
    snprintf(in_st, sizeof in_st, "%s/model.safetensors", argv[1]);
    snprintf(in_cfg, sizeof in_cfg, "%s/config.json", argv[1]);
    snprintf(in_vocab, sizeof in_vocab, "%s/vocab.txt", argv[1]);
    snprintf(out_st, sizeof out_st, "%s/model.safetensors", argv[2]);
    snprintf(out_cfg, sizeof out_cfg, "%s/config.json", argv[2]);
    snprintf(out_vocab, sizeof out_vocab, "%s/vocab.txt", argv[2]);
    bertc_error err = {0};
    safetensors_file f;
    bert_config c;
    if (fs_mkdir_p(argv[2], &err) || safetensors_open(&f, in_st, &err) || bert_config_load(&c, in_cfg, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    st_write_tensor *w = calloc(f.n, sizeof *w);
    size_t nw = 0;
    for (size_t i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        float *buf = malloc((t->numel ? t->numel : 1) * sizeof(float));
        if (safetensors_to_f32(t, buf, t->numel, &err) != 0) {
            fprintf(stderr, "skipping %s\n", err.msg);
            free(buf);
            continue;
        }
        w[nw].name = t->name;
        w[nw].data = buf;
        w[nw].ndim = t->ndim;
        memcpy(w[nw].shape, t->shape, sizeof t->shape);
        nw++;
    }
    const char *meta[] = {"written_by", "bertc model_io_roundtrip"};
    int rc = safetensors_write(out_st, w, nw, meta, 1, &err) || bert_config_set_labels(&c, argv + 3, argc - 3, &err) ||
             bert_config_save(&c, out_cfg, &err) || fs_copy_file(in_vocab, out_vocab, &err);
    if (rc) fprintf(stderr, "error: %s\n", err.msg);
    for (size_t i = 0; i < nw; i++) free((void *)w[i].data);
    free(w);
    bert_config_free(&c);
    safetensors_close(&f);
    return rc;
}
