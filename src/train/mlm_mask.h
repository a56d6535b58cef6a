/* Masking for masked-language-model training, as BERT and transformers'
 * DataCollatorForLanguageModeling do it: each maskable token is selected with probability p
 * (0.15); a selected token becomes [MASK] with probability 0.8, a random token of the vocabulary
 * with 0.1, and stays as it is with 0.1; the loss is computed at the selected positions only.
 * Never selected: padding (attention mask 0) and the special tokens [CLS], [SEP], [PAD], [MASK]
 * and [UNK] (transformers' special-tokens mask). With whole_word, the unit of selection is a
 * word: a maskable token that does not start with "##" together with the maskable "##" tokens
 * right after it (a "##" token with no maskable token before it starts a word of its own); all
 * of a selected word's tokens are selected (DataCollatorForWholeWordMask's grouping).
 *
 * Exactly reproducible from the seed: one util/rng.h generator is consumed in this order, row by
 * row (b = 0..B-1) and within a row position by position (t = 0..T-1):
 *   - at a maskable token that starts a unit (every maskable token, or a word start with
 *     whole_word): u = rng_uniform(r); the unit is selected when u < p;
 *   - then, at a selected token: u = rng_uniform(r); u < 0.8 -> [MASK]; else u < 0.9 ->
 *     rng_below(r, vocab_size) (any id, as transformers' torch.randint(len(tokenizer))); else kept.
 * Unmaskable tokens draw nothing. The comparisons are in float32: u (24 bits, exact) against p,
 * 0.8f and the float32 sum 0.8f + 0.1f. reference/make_mlm_mask_fixture.py re-implements this
 * from the description above, and tests/test_mlm.c checks the two agree draw for draw. */
#ifndef BERTC_TRAIN_MLM_MASK_H
#define BERTC_TRAIN_MLM_MASK_H

#include <stdint.h>

#include "bertc.h"
#include "tokenizer/wordpiece.h"
#include "util/rng.h"

typedef struct mlm_masker {
    int vocab_size, mask_id;
    uint8_t *special;      /* (V) 1: never selected */
    uint8_t *continuation; /* (V) 1: the token starts with "##" */
    float probability;     /* p, 0.15 */
    float mask_fraction;   /* 0.8 */
    float random_fraction; /* 0.1 */
    int whole_word;
} mlm_masker;

/* Reads the special and "##" tokens from the vocabulary; p and whole_word as described above.
 * vocab_size is the model's (ids up to it may be drawn); the tokenizer must have [MASK]. */
int mlm_masker_init(mlm_masker *mk, const wordpiece *wp, int vocab_size, float probability, int whole_word,
                    bertc_error *err);
void mlm_masker_free(mlm_masker *mk);

/* Masks a batch in place. ids (B,T) are rewritten; attn (B,T) is the attention mask (1 = token),
 * NULL for all tokens. positions and labels receive, for the selected tokens in increasing
 * b*T + t order, that index and the original id; each must hold B*T entries. Returns N, the
 * number selected. Ids outside [0, vocab_size) are never selected. */
int mlm_mask_batch(const mlm_masker *mk, rng *r, int32_t *ids, const int32_t *attn, int B, int T, int32_t *positions,
                   int32_t *labels);

#endif
