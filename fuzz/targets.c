/* The fuzz targets' bodies (see targets.h). Each returns the status of the parser it drives.
 * Where a parse succeeds, the result is also used (converted, encoded, saved and read back) so
 * that the fuzzer reaches the code that trusts what the parser checked; a broken invariant there
 * (an id out of range, a file bertc wrote that it cannot read back) aborts, which the fuzzer
 * reports as a crash. */
#include "targets.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bertc.h"
#include "data/dataset.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "sweep/sweep.h"
#include "tokenizer/wordpiece.h"
#include "util/recipe_file.h"

const fuzz_target FUZZ_TARGETS[] = {
    {"safetensors", fuzz_safetensors},
    {"config", fuzz_config},
    {"vocab", fuzz_vocab},
    {"tokenizer_config", fuzz_tokenizer_config},
    {"tokenizer", fuzz_tokenizer},
    {"csv", fuzz_csv},
    {"jsonl", fuzz_jsonl},
    {"tar", fuzz_tar},
    {"split", fuzz_split},
    {"recipe", fuzz_recipe},
    {"sweep", fuzz_sweep},
    {NULL, NULL},
};

/* ------------------------------------------------------------ the private folder */

static char g_dir[256];

static void harness_fail(const char *what, const char *path) {
    fprintf(stderr, "fuzz harness: %s %s failed\n", what, path);
    abort();
}

/* Removes the folder and what the targets put in it (files and one level of sub-folders). */
static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (depth < 2 && lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p, depth + 1);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void) {
    if (g_dir[0]) remove_tree(g_dir, 0);
}

static const char *dir(void) {
    if (!g_dir[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(g_dir, sizeof g_dir, "%s/bertc_fuzz_XXXXXX", base);
        if (!mkdtemp(g_dir)) harness_fail("mkdtemp", g_dir);
        atexit(cleanup);
    }
    return g_dir;
}

/* DIR/name (name may hold one sub-folder, created on first use). */
static const char *path_of(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", dir(), name);
    const char *slash = strchr(name, '/');
    if (slash) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%.*s", dir(), (int)(slash - name), name);
        if (mkdir(sub, 0700) != 0 && access(sub, W_OK) != 0) harness_fail("mkdir", sub);
    }
    return buf;
}

/* Writes the bytes to DIR/name and returns the path (in buf). */
static const char *put(const char *name, const void *data, size_t size, char *buf, size_t bufsize) {
    const char *p = path_of(name, buf, bufsize);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) harness_fail("open", p);
    const char *s = data;
    while (size > 0) {
        ssize_t w = write(fd, s, size);
        if (w <= 0) harness_fail("write", p);
        s += w;
        size -= (size_t)w;
    }
    if (close(fd) != 0) harness_fail("close", p);
    return p;
}

/* With BERTC_FUZZ_VERBOSE set, prints each refused input's message (to see what a seed or a kept
 * input exercises: `BERTC_FUZZ_VERBOSE=1 build-fuzz/fuzz_csv FILE`). Returns rc. */
static int verbose(int rc, const bertc_error *err) {
    static int on = -1;
    if (on < 0) on = getenv("BERTC_FUZZ_VERBOSE") != NULL;
    if (on && rc) fprintf(stderr, "status %d: %s\n", rc, err->msg);
    return rc;
}

static void harness_check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz harness: invariant broken: %s\n", what);
        abort();
    }
}

/* ------------------------------------------------------------ safetensors */

int fuzz_safetensors(const uint8_t *data, size_t size) {
    char path[512];
    put("model.safetensors", data, size, path, sizeof path);
    safetensors_file f;
    bertc_error err;
    int rc = verbose(safetensors_open(&f, path, &err), &err);
    if (rc) return rc;
    /* What the model loader does next: find each tensor by name and convert it to float, and
     * refuse a shape other than the one it expects. */
    for (size_t i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        harness_check(safetensors_find(&f, t->name) != NULL, "safetensors_find misses a tensor of the header");
        if (t->numel > ((size_t)1 << 20)) continue; /* the data is there (checked), but big to copy */
        float *dst = malloc(t->numel ? t->numel * sizeof *dst : 1);
        if (!dst) continue;
        int r = safetensors_to_f32(t, dst, t->numel, &err);
        harness_check(r == BERTC_OK || t->dtype != ST_F32, "an F32 tensor that opened cannot be read");
        int64_t want[ST_MAX_DIMS] = {0};
        for (int d = 0; d < t->ndim; d++) want[d] = t->shape[d];
        r = safetensors_load_f32(&f, t->name, dst, t->ndim, want, &err);
        if (t->ndim > 0) {
            want[0] += 1; /* a wrong shape must be refused, whatever the data */
            harness_check(safetensors_load_f32(&f, t->name, dst, t->ndim, want, &err) != BERTC_OK,
                  "safetensors_load_f32 accepts a wrong shape");
        }
        free(dst);
    }
    safetensors_close(&f);
    return BERTC_OK;
}

/* ------------------------------------------------------------ config.json */

int fuzz_config(const uint8_t *data, size_t size) {
    char path[512], out[512];
    put("config/config.json", data, size, path, sizeof path);
    bert_config c;
    bertc_error err;
    int rc = verbose(bert_config_load(&c, path, &err), &err);
    if (rc) return rc;
    /* bertc rewrites config.json when it saves a model: what it writes it must read back, the same. */
    path_of("config/saved.json", out, sizeof out);
    if (bert_config_save(&c, out, &err) == BERTC_OK) {
        bert_config c2;
        int r = bert_config_load(&c2, out, &err);
        if (r) fprintf(stderr, "fuzz harness: reading back a saved config: %s\n", err.msg);
        harness_check(r == BERTC_OK, "bertc cannot read a config.json it wrote");
        harness_check(c2.hidden_size == c.hidden_size && c2.num_labels == c.num_labels && c2.vocab_size == c.vocab_size &&
                  c2.pad_token_id == c.pad_token_id && c2.hidden_act == c.hidden_act,
              "a saved config.json reads back different");
        for (int i = 0; i < c.num_labels; i++) harness_check(!strcmp(c.id2label[i], c2.id2label[i]), "labels differ");
        bert_config_free(&c2);
    }
    bert_config_free(&c);
    return BERTC_OK;
}

/* ------------------------------------------------------------ tokenizers */

/* Encodes text (and a pair) with every output and checks what the encoder promises. */
static void encode_checked(const wordpiece *wp, const char *text, size_t len, const char *pair, size_t pair_len,
                           int max_length, int pad) {
    int32_t ids[600], mask[600], types[600];
    int n = -1;
    bertc_error err;
    harness_check(max_length <= 600, "harness: max_length");
    int rc = wordpiece_encode(wp, text, len, pair, pair_len, max_length, pad, ids, mask, types, &n, &err);
    if (rc) {
        harness_check(max_length < (pair ? 3 : 2), "wordpiece_encode fails with room for the special tokens");
        return;
    }
    harness_check(n >= (pair ? 3 : 2) && n <= max_length, "wordpiece_encode length out of range");
    int vocab = wordpiece_vocab_size(wp);
    for (int i = 0; i < (pad ? max_length : n); i++) {
        harness_check(ids[i] >= 0 && ids[i] < vocab, "wordpiece_encode id out of the vocabulary");
        harness_check(mask[i] == (i < n), "attention mask");
        harness_check(types[i] == 0 || types[i] == 1, "token type");
    }
    harness_check(ids[0] == wordpiece_cls_id(wp) && ids[n - 1] == wordpiece_sep_id(wp), "special tokens at the ends");

    int32_t few[8];
    size_t total = wordpiece_tokenize(wp, text, len, few, 8);
    if (total > 8) {
        int32_t *all = malloc(total * sizeof *all);
        if (all) {
            harness_check(wordpiece_tokenize(wp, text, len, all, total) == total, "wordpiece_tokenize total changes");
            harness_check(!memcmp(all, few, sizeof few), "wordpiece_tokenize prefix changes with the buffer size");
            for (size_t i = 0; i < total; i++) harness_check(all[i] >= 0 && all[i] < vocab, "wordpiece_tokenize id");
            free(all);
        }
    }
    char small[16];
    size_t full = wordpiece_basic_tokenize(wp, text, len, small, sizeof small);
    harness_check(strlen(small) < sizeof small && strlen(small) <= full, "wordpiece_basic_tokenize overruns");
}

static const char *const SAMPLE_TEXTS[] = {
    "Hello, world! This movie was unaffable [SEP] and naïve.",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xc3\x85ngstr\xc3\xb6m [UNK][MASK]x  \t\r\n ##ing",
    "",
};

static void encode_samples(const wordpiece *wp, const char *extra, size_t extra_len) {
    for (size_t i = 0; i < sizeof SAMPLE_TEXTS / sizeof SAMPLE_TEXTS[0]; i++) {
        const char *t = SAMPLE_TEXTS[i];
        encode_checked(wp, t, strlen(t), NULL, 0, 16, 1);
        encode_checked(wp, t, strlen(t), SAMPLE_TEXTS[0], strlen(SAMPLE_TEXTS[0]), 12, 0);
    }
    if (extra) encode_checked(wp, extra, extra_len, NULL, 0, 64, 0);
}

int fuzz_vocab(const uint8_t *data, size_t size) {
    char path[512], d[512];
    put("vocab/vocab.txt", data, size, path, sizeof path);
    path_of("vocab", d, sizeof d);
    wordpiece *wp;
    bertc_error err;
    int rc = verbose(wordpiece_load_dir(&wp, d, &err), &err);
    if (rc) return rc;
    /* The vocabulary's own bytes as a text: its tokens, special ones included, are all there. */
    encode_samples(wp, (const char *)data, size < 2048 ? size : 2048);
    wordpiece_free(wp);
    return BERTC_OK;
}

/* A small vocabulary with the usual special tokens, two other sets of them, and word pieces. */
static const char SMALL_VOCAB[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n<s>\n</s>\n<pad>\n<unk>\n<mask>\n<cls>\n<sep>\n"
    "hello\n,\nworld\n!\nthis\nmovie\nwas\nun\n##aff\n##able\nand\nna\n##ive\n.\nnaïve\n\xe6\x97\xa5\n"
    "\xe6\x9c\xac\nangstrom\n##ing\n#\n";

int fuzz_tokenizer_config(const uint8_t *data, size_t size) {
    char path[512], d[512];
    put("tokcfg/vocab.txt", SMALL_VOCAB, sizeof SMALL_VOCAB - 1, path, sizeof path);
    put("tokcfg/tokenizer_config.json", data, size, path, sizeof path);
    path_of("tokcfg", d, sizeof d);
    wordpiece *wp;
    bertc_error err;
    int rc = verbose(wordpiece_load_dir(&wp, d, &err), &err);
    if (rc) return rc;
    encode_samples(wp, NULL, 0);
    wordpiece_free(wp);
    return BERTC_OK;
}

/* The real bert-base-uncased tokenizer, loaded once. The first byte picks the call:
 * bits 0-5 max_length (2..65, or 512 when 0), bit 6 padding, bit 7 split the rest into a pair. */
int fuzz_tokenizer(const uint8_t *data, size_t size) {
    static wordpiece *wp;
    if (!wp) {
        const char *vocab = getenv("BERTC_FUZZ_VOCAB") ? getenv("BERTC_FUZZ_VOCAB") : FUZZ_DEFAULT_VOCAB;
        char d[1024];
        snprintf(d, sizeof d, "%s", vocab);
        char *slash = strrchr(d, '/');
        if (slash) *slash = '\0';
        else snprintf(d, sizeof d, ".");
        bertc_error err;
        if (wordpiece_load_dir(&wp, d, &err)) {
            fprintf(stderr, "fuzz harness: %s (set BERTC_FUZZ_VOCAB to a vocab.txt)\n", err.msg);
            abort();
        }
    }
    if (size == 0) return BERTC_OK;
    int flags = data[0];
    int max_length = (flags & 63) ? 1 + (flags & 63) : 512;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (flags & 128) {
        size_t half = len / 2;
        encode_checked(wp, text, half, text + half, len - half, max_length, (flags & 64) != 0);
    } else {
        encode_checked(wp, text, len, NULL, 0, max_length, (flags & 64) != 0);
    }
    return BERTC_OK;
}

/* ------------------------------------------------------------ datasets */

/* What a successful read promises, and what train/eval do next with it. */
static void use_dataset(dataset *d) {
    for (size_t i = 0; i < d->n; i++) {
        const dataset_example *e = &d->ex[i];
        harness_check(e->id && e->text, "example without id or text");
        harness_check(e->label >= -1 && e->label < d->num_labels, "label id out of range");
    }
    for (int k = 0; k < d->num_labels; k++) harness_check(d->labels[k] && d->labels[k][0], "empty label name");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    bertc_error err;
    if (f) {
        dataset_write_split(d, f, "train", &err);
        fclose(f);
        free(buf);
    }
    dataset_select(d, 3, 42, &err);
}

static char *const TWO_LABELS[] = {"neg", "pos"};

/* Reads spec with the defaults, then as a labelled set with skip_bad, reject_empty and a fixed
 * label set (what `bertc eval` does with a training set's labels). Returns the first status. */
static int read_twice(const char *spec, int with_unsup) {
    dataset d;
    bertc_error err;
    int rc = verbose(dataset_read(&d, spec, NULL, &err), &err);
    if (rc == BERTC_OK) use_dataset(&d);
    dataset_free(&d);
    dataset_read_options o = {.skip_bad = 1, .reject_empty = 1, .with_unsup = with_unsup,
                              .label_names = TWO_LABELS, .num_label_names = 2, .label_column = "label"};
    if (verbose(dataset_read(&d, spec, &o, &err), &err) == BERTC_OK) use_dataset(&d);
    dataset_free(&d);
    return rc;
}

int fuzz_csv(const uint8_t *data, size_t size) {
    char path[512];
    int rc = read_twice(put("train.csv", data, size, path, sizeof path), 0);
    read_twice(put("train.tsv", data, size, path, sizeof path), 0);
    return rc;
}

int fuzz_jsonl(const uint8_t *data, size_t size) {
    char path[512];
    return read_twice(put("train.jsonl", data, size, path, sizeof path), 0);
}

int fuzz_tar(const uint8_t *data, size_t size) {
    char path[512], spec[600];
    put("data.tar.gz", data, size, path, sizeof path);
    snprintf(spec, sizeof spec, "%s:train", path);
    int rc = read_twice(spec, 0);
    snprintf(spec, sizeof spec, "%s:./", path); /* the whole archive, unsup folders too */
    read_twice(spec, 1);
    return rc;
}

/* A --load-split file applied to a fixed dataset of six examples (one unlabelled). */
int fuzz_split(const uint8_t *data, size_t size) {
    char path[512];
    put("split.jsonl", data, size, path, sizeof path);
    int rc = BERTC_OK;
    static const char *const SPLITS[] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        dataset d = {0};
        d.n = 6;
        d.ex = calloc(d.n, sizeof *d.ex);
        d.num_labels = 2;
        d.labels = calloc(2, sizeof *d.labels);
        harness_check(d.ex && d.labels, "harness: out of memory");
        d.labels[0] = strdup("neg");
        d.labels[1] = strdup("pos");
        for (size_t i = 0; i < d.n; i++) {
            char id[32];
            snprintf(id, sizeof id, i < 3 ? "line:%zu" : "pos/%zu_7.txt", i + 2);
            d.ex[i].id = strdup(id);
            d.ex[i].text = strdup("some text");
            d.ex[i].label = i == 5 ? -1 : (int)(i % 2);
        }
        bertc_error err;
        int r = verbose(dataset_apply_split(&d, path, SPLITS[s], &err), &err);
        if (s == 0) rc = r;
        if (r == BERTC_OK) {
            harness_check(d.n >= 1 && d.n <= 6, "split keeps a wrong number of examples");
            for (size_t i = 0; i < d.n; i++) harness_check(d.ex[i].id && d.ex[i].text, "split loses an example");
        }
        dataset_free(&d);
    }
    return rc;
}

/* ------------------------------------------------------------ recipe */

int fuzz_recipe(const uint8_t *data, size_t size) {
    char path[512];
    put("recipe.conf", data, size, path, sizeof path);
    char **flags;
    int n;
    bertc_error err;
    int rc = verbose(recipe_file_read(path, &flags, &n, &err), &err);
    if (rc) return rc;
    int count = 0;
    for (char **p = flags; *p; p++) count++;
    harness_check(count == n && (n == 0 || !strncmp(flags[0], "--", 2)), "recipe flags");
    recipe_file_free(flags);
    return BERTC_OK;
}

/* ------------------------------------------------------------ sweep */

int fuzz_sweep(const uint8_t *data, size_t size) {
    char path[512];
    put("space.sweep", data, size, path, sizeof path);
    /* The first line as an --objective too: what parses must print back and parse the same. */
    char line[512];
    size_t n = 0;
    while (n < size && n + 1 < sizeof line && data[n] != '\n') n++;
    memcpy(line, data, n);
    line[n] = '\0';
    sweep_objective o, o2;
    bertc_error err;
    if (sweep_objective_parse(&o, line, &err) == BERTC_OK) {
        char text[1024];
        sweep_objective_format(&o, text, sizeof text);
        harness_check(sweep_objective_parse(&o2, text, &err) == BERTC_OK && o2.n == o.n && o2.metric == o.metric &&
                          o2.maximise == o.maximise,
                      "a formatted objective reads back different");
    }
    sweep_space s;
    int rc = verbose(sweep_space_load(&s, path, &err), &err);
    if (rc) return rc;
    /* What bertc sweep does next: plan the trials (grid, random and halving, a few of each). */
    static const sweep_method METHODS[] = {SWEEP_GRID, SWEEP_RANDOM, SWEEP_HALVING};
    for (int m = 0; m < 3; m++) {
        sweep_plan p;
        if (sweep_plan_make(&p, &s, METHODS[m], 4, 7, &err) == BERTC_OK) {
            harness_check(p.n_trials >= 1 && p.n_trials <= 4 && p.n_dims == s.n_dims, "sweep plan size");
            for (int t = 0; t < p.n_trials; t++)
                for (int d = 0; d < p.n_dims; d++) harness_check(p.values[t][d] != NULL, "sweep plan value");
            sweep_plan_free(&p);
        }
    }
    long points;
    sweep_grid_size(&s, &points, &err);
    sweep_space_set(&s, "model", "models/x", &err);
    sweep_space_free(&s);
    return BERTC_OK;
}
