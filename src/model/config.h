/* config.json of a Hugging Face BERT model: the fields that change the computation. */
#ifndef BERTC_MODEL_CONFIG_H
#define BERTC_MODEL_CONFIG_H

#include "bertc.h"

typedef enum bert_act { BERT_ACT_GELU, BERT_ACT_GELU_NEW, BERT_ACT_RELU } bert_act;

typedef struct bert_config {
    int vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
    int max_position_embeddings, type_vocab_size;
    int pad_token_id;         /* -1 when config.json says null (no padding row in the embedding) */
    bert_act hidden_act;
    float hidden_dropout_prob, attention_probs_dropout_prob;
    float classifier_dropout; /* < 0 means null: use hidden_dropout_prob, as Hugging Face does */
    float layer_norm_eps, initializer_range;
    int num_labels;           /* from id2label when present, else num_labels, else 2 */
    char **id2label;          /* num_labels names ("LABEL_0".. when absent) */
    void *raw;                /* the parsed JSON (cJSON *), kept so unknown fields survive a save */
} bert_config;

/* Reads and validates path (positive sizes, hidden divisible by heads, known activation,
 * probabilities in [0,1), ...). Errors name the file and the field. */
int bert_config_load(bert_config *c, const char *path, bertc_error *err);
/* Sets the label names (copies them); num_labels follows. */
int bert_config_set_labels(bert_config *c, char *const *names, int n, bertc_error *err);
/* Writes config.json for BertForSequenceClassification (architectures, id2label, label2id,
 * num_labels, the computation fields, and every unknown field of the original) atomically. */
int bert_config_save(const bert_config *c, const char *path, bertc_error *err);
void bert_config_free(bert_config *c);
/* "gelu", "gelu_new", "relu". */
const char *bert_act_name(bert_act a);

#endif
