/* config.json: the real bert-base-uncased and MiniLM-L6 configs, defaults, labels through
 * save/load, unknown fields kept, and bad configs each refused with a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/config.h"
#include "util/fs.h"

#define FIX "tests/fixtures/model_io/"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make(tmpdir, sizeof tmpdir, "cfg");
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static void load_ok(bert_config *c, const char *path) {
    bertc_error err = {0};
    int rc = bert_config_load(c, path, &err);
    if (rc) fail_msg("%s", err.msg);
}

static void test_bert_base_uncased(void **state) {
    (void)state;
    bert_config c;
    load_ok(&c, FIX "bert_base_uncased_config.json");
    assert_int_equal(c.vocab_size, 30522);
    assert_int_equal(c.hidden_size, 768);
    assert_int_equal(c.num_hidden_layers, 12);
    assert_int_equal(c.num_attention_heads, 12);
    assert_int_equal(c.intermediate_size, 3072);
    assert_int_equal(c.max_position_embeddings, 512);
    assert_int_equal(c.type_vocab_size, 2);
    assert_int_equal(c.pad_token_id, 0);
    assert_int_equal(c.hidden_act, BERT_ACT_GELU);
    assert_true(c.hidden_dropout_prob == 0.1f);
    assert_true(c.attention_probs_dropout_prob == 0.1f);
    assert_true(c.classifier_dropout < 0);
    assert_true(c.layer_norm_eps == 1e-12f);
    assert_true(c.initializer_range == 0.02f);
    assert_int_equal(c.num_labels, 2);
    assert_string_equal(c.id2label[0], "LABEL_0");
    assert_string_equal(c.id2label[1], "LABEL_1");
    assert_non_null(c.raw);
    bert_config_free(&c);
    bert_config_free(&c); /* harmless twice */
}

static void test_minilm(void **state) {
    (void)state;
    bert_config c;
    load_ok(&c, FIX "minilm_l6_config.json");
    assert_int_equal(c.hidden_size, 384);
    assert_int_equal(c.num_hidden_layers, 6);
    assert_int_equal(c.num_attention_heads, 12);
    assert_int_equal(c.intermediate_size, 1536);
    assert_int_equal(c.num_labels, 2);
    bert_config_free(&c);
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Writes text as <tmpdir>/config.json and expects load to fail with code and a message holding want. */
static void expect_error(const char *text, int code, const char *want) {
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    write_file(path, text);
    bert_config c;
    bertc_error err = {0};
    int rc = bert_config_load(&c, path, &err);
    if (rc == 0) {
        bert_config_free(&c);
        fail_msg("loaded %s, expected an error containing \"%s\"", text, want);
    }
    assert_int_equal(rc, code);
    if (!strstr(err.msg, want)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    assert_non_null(strstr(err.msg, path));
    assert_null(c.raw); /* nothing left to free */
    assert_null(c.id2label);
}

static void test_defaults_and_choices(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    bert_config c;
    /* Every field absent: transformers' BertConfig defaults. */
    write_file(path, "{}");
    load_ok(&c, path);
    assert_int_equal(c.vocab_size, 30522);
    assert_int_equal(c.hidden_size, 768);
    assert_int_equal(c.num_hidden_layers, 12);
    assert_int_equal(c.intermediate_size, 3072);
    assert_int_equal(c.hidden_act, BERT_ACT_GELU);
    assert_true(c.classifier_dropout == -1.0f);
    assert_int_equal(c.num_labels, 2);
    bert_config_free(&c);

    write_file(path, "{\"hidden_act\": \"gelu_new\", \"classifier_dropout\": 0.25, \"pad_token_id\": null,"
                     " \"num_labels\": 3, \"hidden_dropout_prob\": 0, \"position_embedding_type\": \"absolute\"}\n");
    load_ok(&c, path);
    assert_int_equal(c.hidden_act, BERT_ACT_GELU_NEW);
    assert_true(c.classifier_dropout == 0.25f);
    assert_true(c.hidden_dropout_prob == 0.0f);
    assert_int_equal(c.pad_token_id, -1);
    assert_int_equal(c.num_labels, 3);
    assert_string_equal(c.id2label[2], "LABEL_2");
    bert_config_free(&c);

    write_file(path, "{\"hidden_act\": \"gelu_python\"}");
    load_ok(&c, path);
    assert_int_equal(c.hidden_act, BERT_ACT_GELU);
    bert_config_free(&c);
    write_file(path, "{\"hidden_act\": \"relu\"}");
    load_ok(&c, path);
    assert_int_equal(c.hidden_act, BERT_ACT_RELU);
    bert_config_free(&c);

    /* id2label wins over a disagreeing num_labels, as in transformers; keys in any order. */
    write_file(path, "{\"num_labels\": 5, \"id2label\": {\"1\": \"pos\", \"0\": \"neg\", \"2\": \"mixed\"},"
                     " \"label2id\": {\"neg\": 0, \"pos\": 1, \"mixed\": 2}}");
    load_ok(&c, path);
    assert_int_equal(c.num_labels, 3);
    assert_string_equal(c.id2label[0], "neg");
    assert_string_equal(c.id2label[1], "pos");
    assert_string_equal(c.id2label[2], "mixed");
    bert_config_free(&c);
}

static void test_labels_round_trip(void **state) {
    (void)state;
    bert_config c;
    load_ok(&c, FIX "minilm_l6_config.json");
    char *names[3] = {"negative", "positive", "caf\xc3\xa9 \"quoted\""};
    bertc_error err = {0};
    assert_int_equal(bert_config_set_labels(&c, names, 3, &err), 0);
    assert_int_equal(c.num_labels, 3);
    c.classifier_dropout = 0.2f;
    c.hidden_dropout_prob = 0.15f;
    char path[300];
    snprintf(path, sizeof path, "%s/saved_config.json", tmpdir);
    int rc = bert_config_save(&c, path, &err);
    if (rc) fail_msg("%s", err.msg);
    bert_config_free(&c);

    bert_config d;
    load_ok(&d, path);
    assert_int_equal(d.num_labels, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(d.id2label[i], names[i]);
    assert_int_equal(d.hidden_size, 384);
    assert_int_equal(d.num_hidden_layers, 6);
    assert_true(d.classifier_dropout == 0.2f);
    assert_true(d.hidden_dropout_prob == 0.15f);
    assert_true(d.layer_norm_eps == 1e-12f);

    /* What transformers needs, and every unknown field of the original, are in the file. */
    const cJSON *root = d.raw;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    assert_true(cJSON_IsArray(arch) && cJSON_GetArraySize(arch) == 1);
    assert_string_equal(cJSON_GetArrayItem(arch, 0)->valuestring, "BertForSequenceClassification");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "model_type")->valuestring, "bert");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "_name_or_path")->valuestring,
                        "nreimers/MiniLM-L6-H384-uncased");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "gradient_checkpointing")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "use_cache")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "transformers_version")->valuestring, "4.8.2");
    const cJSON *label2id = cJSON_GetObjectItemCaseSensitive(root, "label2id");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(label2id, "positive")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "num_labels")->valueint, 3);
    /* 0.15f is written as 0.15, not as the double nearest to the float. */
    assert_true(cJSON_GetObjectItemCaseSensitive(root, "hidden_dropout_prob")->valuedouble == 0.15);
    bert_config_free(&d);

    /* Saving again gives the same bytes (stable output: sorted keys, same numbers). */
    char path2[300];
    snprintf(path2, sizeof path2, "%s/saved_again.json", tmpdir);
    load_ok(&d, path);
    assert_int_equal(bert_config_save(&d, path2, &err), 0);
    bert_config_free(&d);
    char *a, *b;
    size_t na, nb;
    assert_int_equal(fs_read_all(path, &a, &na, 1 << 20, &err), 0);
    assert_int_equal(fs_read_all(path2, &b, &nb, 1 << 20, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
}

static void test_set_labels_rejects(void **state) {
    (void)state;
    bert_config c;
    load_ok(&c, FIX "bert_base_uncased_config.json");
    bertc_error err = {0};
    char *dup[2] = {"a", "a"};
    assert_int_equal(bert_config_set_labels(&c, dup, 2, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "'a' is used for both 0 and 1"));
    char *empty[1] = {""};
    assert_int_equal(bert_config_set_labels(&c, empty, 1, &err), BERTC_EINVAL);
    assert_int_equal(bert_config_set_labels(&c, dup, 0, &err), BERTC_EINVAL);
    char *latin1[2] = {"ok", "caf\xe9"};
    assert_int_equal(bert_config_set_labels(&c, latin1, 2, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "label 1 is not valid UTF-8"));
    /* The old labels are untouched after a refused change. */
    assert_int_equal(c.num_labels, 2);
    assert_string_equal(c.id2label[1], "LABEL_1");
    bert_config_free(&c);
}

static void test_bad_configs(void **state) {
    (void)state;
    bert_config c;
    bertc_error err = {0};
    assert_int_equal(bert_config_load(&c, "/nonexistent/config.json", &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/config.json: cannot open"));

    expect_error("", BERTC_EFORMAT, "line 1: not valid JSON");
    expect_error("{\n  \"hidden_size\": 768,\n  \"vocab_size\": ,\n}", BERTC_EFORMAT, "line 3: not valid JSON");
    expect_error("{\"hidden_size\": 768} trailing", BERTC_EFORMAT, "not valid JSON");
    expect_error("[1, 2]", BERTC_EFORMAT, "not a JSON object");
    expect_error("{\n\"id2label\": {\"0\": \"caf\xe9\"}}", BERTC_EFORMAT, "line 2: not valid UTF-8");
    expect_error("{\"hidden_size\": 100}", BERTC_EFORMAT,
                 "field 'hidden_size' (100) must be a multiple of 'num_attention_heads' (12)");
    expect_error("{\"hidden_act\": \"swish\"}", BERTC_EUNSUPPORTED, "unknown hidden_act 'swish'");
    expect_error("{\"hidden_act\": 3}", BERTC_EFORMAT, "field 'hidden_act' must be a string");
    expect_error("{\"num_hidden_layers\": -2}", BERTC_EFORMAT, "field 'num_hidden_layers' must be a positive integer");
    expect_error("{\"num_hidden_layers\": 0}", BERTC_EFORMAT, "field 'num_hidden_layers' must be a positive integer");
    expect_error("{\"hidden_size\": \"768\"}", BERTC_EFORMAT, "field 'hidden_size' must be a positive integer");
    expect_error("{\"hidden_size\": 768.5}", BERTC_EFORMAT, "field 'hidden_size' must be a positive integer");
    expect_error("{\"vocab_size\": 1e20}", BERTC_EFORMAT, "field 'vocab_size' must be a positive integer");
    expect_error("{\"num_attention_heads\": null}", BERTC_EFORMAT, "field 'num_attention_heads' must be a positive");
    expect_error("{\"hidden_dropout_prob\": 1.0}", BERTC_EFORMAT, "field 'hidden_dropout_prob' must be a number in [0, 1)");
    expect_error("{\"attention_probs_dropout_prob\": -0.1}", BERTC_EFORMAT, "field 'attention_probs_dropout_prob'");
    expect_error("{\"classifier_dropout\": \"0.1\"}", BERTC_EFORMAT, "field 'classifier_dropout' must be a number in [0, 1) or null");
    expect_error("{\"layer_norm_eps\": 0}", BERTC_EFORMAT, "field 'layer_norm_eps' must be a positive number");
    expect_error("{\"layer_norm_eps\": 1e-50}", BERTC_EFORMAT, "field 'layer_norm_eps' must be a positive number");
    expect_error("{\"initializer_range\": -1}", BERTC_EFORMAT, "field 'initializer_range' must be a non-negative number");
    expect_error("{\"pad_token_id\": -1}", BERTC_EFORMAT, "field 'pad_token_id' must be a non-negative integer");
    expect_error("{\"vocab_size\": 100, \"pad_token_id\": 100}", BERTC_EFORMAT, "field 'pad_token_id' is 100, outside the vocabulary (size 100)");
    expect_error("{\"position_embedding_type\": \"relative_key\"}", BERTC_EUNSUPPORTED,
                 "position_embedding_type 'relative_key' is not supported");
    expect_error("{\"is_decoder\": true}", BERTC_EUNSUPPORTED, "field 'is_decoder' is true");
    expect_error("{\"problem_type\": \"regression\"}", BERTC_EUNSUPPORTED, "problem_type 'regression' is not supported");
    expect_error("{\"num_labels\": 0}", BERTC_EFORMAT, "field 'num_labels' must be a positive integer");
    expect_error("{\"id2label\": []}", BERTC_EFORMAT, "field 'id2label' must be an object");
    expect_error("{\"id2label\": {}}", BERTC_EFORMAT, "field 'id2label' is empty");
    expect_error("{\"id2label\": {\"0\": \"a\", \"2\": \"b\"}}", BERTC_EFORMAT,
                 "field 'id2label': key '2' is not one of \"0\"..\"1\"");
    expect_error("{\"id2label\": {\"0\": \"a\", \"01\": \"b\"}}", BERTC_EFORMAT, "key '01' is not one of");
    expect_error("{\"id2label\": {\"0\": \"a\", \"-1\": \"b\"}}", BERTC_EFORMAT, "key '-1' is not one of");
    expect_error("{\"id2label\": {\"0\": \"a\", \"0\": \"b\"}}", BERTC_EFORMAT, "key '0' appears twice");
    expect_error("{\"id2label\": {\"0\": \"a\", \"1\": 7}}", BERTC_EFORMAT, "value of '1' must be a string");
    expect_error("{\"id2label\": {\"0\": \"a\", \"1\": \"a\"}}", BERTC_EFORMAT, "label name 'a' is used for both 0 and 1");
    expect_error("{\"label2id\": 3}", BERTC_EFORMAT, "field 'label2id' must be an object");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_base_uncased),
        cmocka_unit_test(test_minilm),
        cmocka_unit_test(test_defaults_and_choices),
        cmocka_unit_test(test_labels_round_trip),
        cmocka_unit_test(test_set_labels_rejects),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
