/* config.json of a Hugging Face BERT model.
 *
 * Loading reads every field that changes the computation, with transformers' BertConfig
 * defaults for absent ones, and checks each: a wrong JSON type or an out-of-range value is an
 * error that names the file and the field. The parsed JSON is kept (c->raw) so that saving
 * writes back every field bertc does not know, as transformers would.
 *
 * Choices, where transformers leaves room:
 *  - hidden_act: "gelu" and "gelu_python" (the same erf GELU) -> BERT_ACT_GELU; "gelu_new" and
 *    "gelu_pytorch_tanh" (the same tanh approximation) -> BERT_ACT_GELU_NEW; "relu". Anything
 *    else is refused rather than silently computed with another function.
 *  - id2label wins over num_labels when both are present and disagree (transformers does the
 *    same, with a warning). Its keys must be "0".."K-1", each exactly once; its values strings,
 *    all different (a name must identify one class).
 *  - pad_token_id may be null (no padding row in the embedding): stored as -1.
 *  - Settings bertc cannot honour are refused, not ignored: position_embedding_type other than
 *    "absolute", is_decoder/add_cross_attention true, problem_type other than
 *    "single_label_classification". */
#include "model/config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "util/error.h"
#include "util/text.h"
#include "util/fs.h"

/* A config.json is a few kB; anything this big is not one. */
#define CONFIG_MAX_BYTES (16u << 20)
/* More classes than any text classification task has; bounds what num_labels makes us allocate. */
#define CONFIG_MAX_LABELS 100000

static const struct {
    const char *name;
    bert_act act;
} ACTIVATIONS[] = {
    {"gelu", BERT_ACT_GELU},
    {"gelu_python", BERT_ACT_GELU},
    {"gelu_new", BERT_ACT_GELU_NEW},
    {"gelu_pytorch_tanh", BERT_ACT_GELU_NEW},
    {"relu", BERT_ACT_RELU},
};

const char *bert_act_name(bert_act a) {
    switch (a) {
    case BERT_ACT_GELU: return "gelu";
    case BERT_ACT_GELU_NEW: return "gelu_new";
    case BERT_ACT_RELU: return "relu";
    }
    return "unknown";
}

/* ---------------------------------------------------------------------------------------- */
/* Field readers: absent -> default; present -> checked.                                     */

/* An integer field in [min, INT_MAX]. */
static int read_int(const char *path, const cJSON *root, const char *field, int dflt, int min, int *out,
                    bertc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!v) {
        *out = dflt;
        return BERTC_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= min && d <= INT_MAX) || floor(d) != d) {
        const char *what = min > 0 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer";
        return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be %s", path, field, what);
    }
    *out = (int)d;
    return BERTC_OK;
}

/* A dropout probability in [0, 1). null is accepted only where allow_null (classifier_dropout): -1. */
static int read_prob(const char *path, const cJSON *root, const char *field, float dflt, int allow_null,
                     float *out, bertc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!v) {
        *out = dflt;
        return BERTC_OK;
    }
    if (allow_null && cJSON_IsNull(v)) {
        *out = -1.0f;
        return BERTC_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= 0.0 && d < 1.0))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be a number in [0, 1)%s", path, field,
                            allow_null ? " or null" : "");
    *out = (float)d;
    return BERTC_OK;
}

/* A float in (0, inf) when positive, else [0, inf). */
static int read_float(const char *path, const cJSON *root, const char *field, float dflt, int positive, float *out,
                      bertc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!v) {
        *out = dflt;
        return BERTC_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    float f = (float)d;
    if (!isfinite(f) || (positive ? !(f > 0.0f) : !(f >= 0.0f)))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be a %s number", path, field,
                            positive ? "positive" : "non-negative");
    *out = f;
    return BERTC_OK;
}

static int read_bool_false(const char *path, const cJSON *root, const char *field, bertc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!v || cJSON_IsFalse(v) || cJSON_IsNull(v)) return BERTC_OK;
    if (cJSON_IsTrue(v))
        return bertc_errorf(err, BERTC_EUNSUPPORTED, "%s: field '%s' is true; bertc only runs BERT as an encoder",
                            path, field);
    return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be true or false", path, field);
}

static void free_labels(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

typedef struct name_at {
    const char *name;
    int id;
} name_at;

static int cmp_name_at(const void *a, const void *b) {
    const name_at *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* Names must be non-empty and all different. where: "path: field 'id2label'" or "config".
 * Duplicates are found by sorting (n can be large: config.json is outside input). */
static int check_label_names(const char *where, int code, char *const *names, int n, bertc_error *err) {
    for (int i = 0; i < n; i++) {
        if (!names[i] || !names[i][0]) return bertc_errorf(err, code, "%s: label %d has an empty name", where, i);
        size_t n_bytes = strlen(names[i]);
        if (utf8_valid_prefix(names[i], n_bytes) != n_bytes)
            return bertc_errorf(err, code, "%s: label %d is not valid UTF-8", where, i);
    }
    if (n < 2) return BERTC_OK;
    name_at *v = malloc((size_t)n * sizeof *v);
    if (!v) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory for %d labels", where, n);
    for (int i = 0; i < n; i++) v[i] = (name_at){names[i], i};
    qsort(v, (size_t)n, sizeof *v, cmp_name_at);
    /* Report the pair whose second id is smallest (the first repeat met reading the labels in order). */
    int first = -1, second = -1;
    for (int k = 1; k < n; k++)
        if (strcmp(v[k - 1].name, v[k].name) == 0 && (second < 0 || v[k].id < second)) {
            int j = k - 1;
            while (j > 0 && strcmp(v[j - 1].name, v[k].name) == 0) j--;
            first = v[j].id; /* the earliest id of that name */
            second = v[k].id;
        }
    free(v);
    if (second >= 0)
        return bertc_errorf(err, code, "%s: label name '%s' is used for both %d and %d", where, names[second], first,
                            second);
    return BERTC_OK;
}

/* "0", "1", ... "K-1" as transformers writes them: decimal, no sign, no leading zero. */
static int parse_label_key(const char *s, int limit) {
    if (!s[0] || (s[0] == '0' && s[1]) || strlen(s) > 9) return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v < limit ? v : -1;
}

static int read_labels(bert_config *c, const char *path, const cJSON *root, bertc_error *err) {
    int num_labels;
    int rc = read_int(path, root, "num_labels", 2, 1, &num_labels, err);
    if (rc) return rc;
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    const cJSON *label2id = cJSON_GetObjectItemCaseSensitive(root, "label2id");
    if (label2id && !cJSON_IsObject(label2id) && !cJSON_IsNull(label2id))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: field 'label2id' must be an object", path);
    if (id2label && !cJSON_IsNull(id2label)) {
        if (!cJSON_IsObject(id2label))
            return bertc_errorf(err, BERTC_EFORMAT, "%s: field 'id2label' must be an object", path);
        num_labels = cJSON_GetArraySize(id2label);
        if (num_labels < 1) return bertc_errorf(err, BERTC_EFORMAT, "%s: field 'id2label' is empty", path);
    }
    if (num_labels > CONFIG_MAX_LABELS)
        return bertc_errorf(err, BERTC_EUNSUPPORTED, "%s: %d labels; bertc supports at most %d", path, num_labels,
                            CONFIG_MAX_LABELS);
    char **names = calloc((size_t)num_labels, sizeof *names);
    if (!names) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory for %d labels", path, num_labels);
    if (id2label && !cJSON_IsNull(id2label)) {
        for (const cJSON *e = id2label->child; e; e = e->next) {
            int id = parse_label_key(e->string, num_labels);
            if (id < 0) {
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'id2label': key '%s' is not one of \"0\"..\"%d\"",
                                  path, e->string, num_labels - 1);
                break;
            }
            if (names[id]) {
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'id2label': key '%s' appears twice", path,
                                  e->string);
                break;
            }
            if (!cJSON_IsString(e)) {
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'id2label': value of '%s' must be a string", path,
                                  e->string);
                break;
            }
            if (!(names[id] = strdup(e->valuestring))) {
                rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
                break;
            }
        }
    } else {
        for (int i = 0; i < num_labels && !rc; i++) {
            char name[32];
            snprintf(name, sizeof name, "LABEL_%d", i);
            if (!(names[i] = strdup(name))) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
        }
    }
    if (!rc) {
        char where[512];
        snprintf(where, sizeof where, "%s: field 'id2label'", path);
        rc = check_label_names(where, BERTC_EFORMAT, names, num_labels, err);
    }
    if (rc) {
        free_labels(names, num_labels);
        return rc;
    }
    c->id2label = names;
    c->num_labels = num_labels;
    return BERTC_OK;
}

int bert_config_load(bert_config *c, const char *path, bertc_error *err) {
    memset(c, 0, sizeof *c);
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_all(path, &text, &len, CONFIG_MAX_BYTES, err);
    if (rc) return rc;
    size_t bad = utf8_valid_prefix(text, len);
    if (bad != len) {
        size_t line = 1;
        for (size_t i = 0; i < bad; i++) line += text[i] == '\n';
        free(text);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: not valid UTF-8", path, line);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    /* Only whitespace may follow the object (cJSON stops at its end without looking further). */
    while (root && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (root && end < text + len) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) {
        /* A line number is what a person needs to find the mistake. */
        size_t line = 1;
        for (const char *p = text; end && p < end && p < text + len; p++) line += *p == '\n';
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: not valid JSON", path, line);
        free(text);
        return rc;
    }
    free(text);
    c->raw = root;
    if (!cJSON_IsObject(root)) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: not a JSON object", path);
        goto fail;
    }

    /* BertConfig's defaults (transformers 5.x), field by field. */
    if ((rc = read_int(path, root, "vocab_size", 30522, 1, &c->vocab_size, err)) ||
        (rc = read_int(path, root, "hidden_size", 768, 1, &c->hidden_size, err)) ||
        (rc = read_int(path, root, "num_hidden_layers", 12, 1, &c->num_hidden_layers, err)) ||
        (rc = read_int(path, root, "num_attention_heads", 12, 1, &c->num_attention_heads, err)) ||
        (rc = read_int(path, root, "intermediate_size", 3072, 1, &c->intermediate_size, err)) ||
        (rc = read_int(path, root, "max_position_embeddings", 512, 1, &c->max_position_embeddings, err)) ||
        (rc = read_int(path, root, "type_vocab_size", 2, 1, &c->type_vocab_size, err)) ||
        (rc = read_prob(path, root, "hidden_dropout_prob", 0.1f, 0, &c->hidden_dropout_prob, err)) ||
        (rc = read_prob(path, root, "attention_probs_dropout_prob", 0.1f, 0, &c->attention_probs_dropout_prob, err)) ||
        (rc = read_prob(path, root, "classifier_dropout", -1.0f, 1, &c->classifier_dropout, err)) ||
        (rc = read_float(path, root, "layer_norm_eps", 1e-12f, 1, &c->layer_norm_eps, err)) ||
        (rc = read_float(path, root, "initializer_range", 0.02f, 0, &c->initializer_range, err)) ||
        (rc = read_bool_false(path, root, "is_decoder", err)) ||
        (rc = read_bool_false(path, root, "add_cross_attention", err)))
        goto fail;

    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "pad_token_id");
    if (pad && cJSON_IsNull(pad)) c->pad_token_id = -1;
    else if ((rc = read_int(path, root, "pad_token_id", 0, 0, &c->pad_token_id, err))) goto fail;
    if (c->pad_token_id >= c->vocab_size) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'pad_token_id' is %d, outside the vocabulary (size %d)",
                          path, c->pad_token_id, c->vocab_size);
        goto fail;
    }
    if (c->hidden_size % c->num_attention_heads != 0) {
        rc = bertc_errorf(err, BERTC_EFORMAT,
                          "%s: field 'hidden_size' (%d) must be a multiple of 'num_attention_heads' (%d)", path,
                          c->hidden_size, c->num_attention_heads);
        goto fail;
    }

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    c->hidden_act = BERT_ACT_GELU;
    if (act) {
        if (!cJSON_IsString(act)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'hidden_act' must be a string", path);
            goto fail;
        }
        size_t i = 0, n = sizeof ACTIVATIONS / sizeof ACTIVATIONS[0];
        while (i < n && strcmp(ACTIVATIONS[i].name, act->valuestring) != 0) i++;
        if (i == n) {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED,
                              "%s: unknown hidden_act '%s' (bertc knows gelu, gelu_new, gelu_python, "
                              "gelu_pytorch_tanh, relu)", path, act->valuestring);
            goto fail;
        }
        c->hidden_act = ACTIVATIONS[i].act;
    }

    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(root, "position_embedding_type");
    if (pos && !cJSON_IsNull(pos)) {
        if (!cJSON_IsString(pos)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'position_embedding_type' must be a string", path);
            goto fail;
        }
        if (strcmp(pos->valuestring, "absolute") != 0) {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED,
                              "%s: position_embedding_type '%s' is not supported (only 'absolute')", path,
                              pos->valuestring);
            goto fail;
        }
    }
    const cJSON *problem = cJSON_GetObjectItemCaseSensitive(root, "problem_type");
    if (problem && !cJSON_IsNull(problem)) {
        if (!cJSON_IsString(problem)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: field 'problem_type' must be a string", path);
            goto fail;
        }
        if (strcmp(problem->valuestring, "single_label_classification") != 0) {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED,
                              "%s: problem_type '%s' is not supported (only 'single_label_classification')", path,
                              problem->valuestring);
            goto fail;
        }
    }
    if ((rc = read_labels(c, path, root, err))) goto fail;
    return BERTC_OK;
fail:
    bert_config_free(c);
    return rc;
}

int bert_config_set_labels(bert_config *c, char *const *names, int n, bertc_error *err) {
    if (n < 1 || !names) return bertc_errorf(err, BERTC_EINVAL, "config: need at least one label, got %d", n);
    int rc = check_label_names("config", BERTC_EINVAL, names, n, err);
    if (rc) return rc;
    char **copy = calloc((size_t)n, sizeof *copy);
    if (!copy) return bertc_errorf(err, BERTC_ENOMEM, "config: out of memory for %d labels", n);
    for (int i = 0; i < n; i++)
        if (!(copy[i] = strdup(names[i]))) {
            free_labels(copy, n);
            return bertc_errorf(err, BERTC_ENOMEM, "config: out of memory for %d labels", n);
        }
    free_labels(c->id2label, c->num_labels);
    c->id2label = copy;
    c->num_labels = n;
    return BERTC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Saving                                                                                   */

/* Puts value under key, replacing an existing entry in place (so the original order is kept). */
static int set_field(cJSON *root, const char *key, cJSON *value) {
    if (!value) return -1;
    if (cJSON_GetObjectItemCaseSensitive(root, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(root, key, value) ? 0 : (cJSON_Delete(value), -1);
    return cJSON_AddItemToObject(root, key, value) ? 0 : (cJSON_Delete(value), -1);
}

/* The float as the shortest decimal that reads back to the same float: 0.1f is written "0.1",
 * not 0.10000000149011612 (what its double would print as). */
static double float_for_json(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

/* Keeps the original number when it still says the same float, so a load/save round trip
 * does not rewrite 1e-12 into 9.9999999600419720025e-13. */
static int set_float(cJSON *root, const char *key, float f) {
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(root, key);
    if (old && cJSON_IsNumber(old) && (float)old->valuedouble == f) return 0;
    return set_field(root, key, cJSON_CreateNumber(float_for_json(f)));
}

static int key_cmp(const void *a, const void *b) {
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* transformers writes config.json with sorted keys; doing the same keeps diffs between the two small. */
static int sort_top_level(cJSON *root) {
    int n = cJSON_GetArraySize(root);
    if (n < 2) return 0;
    cJSON **items = malloc((size_t)n * sizeof *items);
    if (!items) return -1;
    int i = 0;
    for (cJSON *e = root->child; e; e = e->next) items[i++] = e;
    qsort(items, (size_t)n, sizeof *items, key_cmp);
    /* cJSON's list: next links forward, the head's prev points at the tail, the tail's next is NULL. */
    for (i = 0; i < n; i++) {
        items[i]->next = i + 1 < n ? items[i + 1] : NULL;
        items[i]->prev = i > 0 ? items[i - 1] : items[n - 1];
    }
    root->child = items[0];
    free(items);
    return 0;
}

int bert_config_save(const bert_config *c, const char *path, bertc_error *err) {
    if (c->num_labels < 1 || !c->id2label)
        return bertc_errorf(err, BERTC_EINVAL, "%s: config has no labels to save", path);
    cJSON *root = c->raw ? cJSON_Duplicate(c->raw, 1) : cJSON_CreateObject();
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    }
    int bad = 0;
    cJSON *arch = cJSON_CreateArray();
    if (arch) cJSON_AddItemToArray(arch, cJSON_CreateString("BertForSequenceClassification"));
    bad |= set_field(root, "architectures", arch);
    bad |= set_field(root, "model_type", cJSON_CreateString("bert"));
    bad |= set_field(root, "vocab_size", cJSON_CreateNumber(c->vocab_size));
    bad |= set_field(root, "hidden_size", cJSON_CreateNumber(c->hidden_size));
    bad |= set_field(root, "num_hidden_layers", cJSON_CreateNumber(c->num_hidden_layers));
    bad |= set_field(root, "num_attention_heads", cJSON_CreateNumber(c->num_attention_heads));
    bad |= set_field(root, "intermediate_size", cJSON_CreateNumber(c->intermediate_size));
    bad |= set_field(root, "max_position_embeddings", cJSON_CreateNumber(c->max_position_embeddings));
    bad |= set_field(root, "type_vocab_size", cJSON_CreateNumber(c->type_vocab_size));
    bad |= set_field(root, "pad_token_id",
                     c->pad_token_id < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(c->pad_token_id));
    /* Keep "gelu_python" etc. when it still names the activation in use. */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    int act_same = 0;
    if (act && cJSON_IsString(act))
        for (size_t i = 0; i < sizeof ACTIVATIONS / sizeof ACTIVATIONS[0]; i++)
            act_same |= strcmp(ACTIVATIONS[i].name, act->valuestring) == 0 && ACTIVATIONS[i].act == c->hidden_act;
    if (!act_same) bad |= set_field(root, "hidden_act", cJSON_CreateString(bert_act_name(c->hidden_act)));
    bad |= set_float(root, "hidden_dropout_prob", c->hidden_dropout_prob);
    bad |= set_float(root, "attention_probs_dropout_prob", c->attention_probs_dropout_prob);
    if (c->classifier_dropout < 0) bad |= set_field(root, "classifier_dropout", cJSON_CreateNull());
    else bad |= set_float(root, "classifier_dropout", c->classifier_dropout);
    bad |= set_float(root, "layer_norm_eps", c->layer_norm_eps);
    bad |= set_float(root, "initializer_range", c->initializer_range);

    /* Labels: id2label keys are strings, as JSON requires and transformers writes them. */
    cJSON *id2label = cJSON_CreateObject(), *label2id = cJSON_CreateObject();
    for (int i = 0; i < c->num_labels && id2label && label2id; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", i);
        bad |= !cJSON_AddItemToObject(id2label, key, cJSON_CreateString(c->id2label[i]));
        bad |= !cJSON_AddItemToObject(label2id, c->id2label[i], cJSON_CreateNumber(i));
    }
    bad |= set_field(root, "id2label", id2label);
    bad |= set_field(root, "label2id", label2id);
    bad |= set_field(root, "num_labels", cJSON_CreateNumber(c->num_labels));
    bad |= sort_top_level(root);

    char *text = bad ? NULL : cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory building the JSON", path);
    /* cJSON indents with tabs and puts a tab after each colon; transformers' json.dumps(indent=2)
     * uses two spaces and one. Raw tabs only ever appear as such layout (tabs inside strings are
     * escaped as \t), so rewriting them is safe. */
    size_t len = strlen(text);
    char *out = malloc(2 * len + 2);
    if (!out) {
        free(text);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '\t') out[o++] = text[i];
        else if (i > 0 && text[i - 1] == ':') out[o++] = ' ';
        else out[o++] = ' ', out[o++] = ' ';
    }
    out[o++] = '\n';
    free(text);
    int rc = fs_write_atomic(path, out, o, err);
    free(out);
    return rc;
}

void bert_config_free(bert_config *c) {
    if (!c) return;
    free_labels(c->id2label, c->num_labels);
    cJSON_Delete(c->raw);
    memset(c, 0, sizeof *c);
}
