/* BERT's masking; the rule and the order of random draws are in mlm_mask.h. */
#include "train/mlm_mask.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int mlm_masker_init(mlm_masker *mk, const wordpiece *wp, int vocab_size, float probability, int whole_word,
                    bertc_error *err) {
    memset(mk, 0, sizeof *mk);
    if (vocab_size < 1) return bertc_errorf(err, BERTC_EINVAL, "masking: vocabulary size %d", vocab_size);
    if (!(probability > 0 && probability <= 1))
        return bertc_errorf(err, BERTC_EINVAL, "masking: probability must be in (0, 1], got %g", (double)probability);
    mk->mask_id = wordpiece_mask_id(wp);
    if (mk->mask_id < 0 || mk->mask_id >= vocab_size)
        return bertc_errorf(err, BERTC_EINVAL, "masking: the vocabulary has no [MASK] token within the model's %d ids",
                            vocab_size);
    mk->vocab_size = vocab_size;
    mk->probability = probability;
    mk->mask_fraction = 0.8f;
    mk->random_fraction = 0.1f;
    mk->whole_word = whole_word;
    mk->special = calloc((size_t)vocab_size, 1);
    mk->continuation = calloc((size_t)vocab_size, 1);
    if (!mk->special || !mk->continuation) {
        mlm_masker_free(mk);
        return bertc_errorf(err, BERTC_ENOMEM, "masking: out of memory");
    }
    int specials[5] = {wordpiece_cls_id(wp), wordpiece_sep_id(wp), wordpiece_pad_id(wp), wordpiece_mask_id(wp),
                       wordpiece_unk_id(wp)};
    for (int i = 0; i < 5; i++)
        if (specials[i] >= 0 && specials[i] < vocab_size) mk->special[specials[i]] = 1;
    int nv = wordpiece_vocab_size(wp) < vocab_size ? wordpiece_vocab_size(wp) : vocab_size;
    for (int id = 0; id < nv; id++) {
        const char *tok = wordpiece_token(wp, id);
        mk->continuation[id] = tok && tok[0] == '#' && tok[1] == '#' && tok[2] != '\0';
    }
    return 0;
}

void mlm_masker_free(mlm_masker *mk) {
    free(mk->special);
    free(mk->continuation);
    mk->special = mk->continuation = NULL;
}

int mlm_mask_batch(const mlm_masker *mk, rng *r, int32_t *ids, const int32_t *attn, int B, int T, int32_t *positions,
                   int32_t *labels) {
    int n = 0;
    for (int b = 0; b < B; b++) {
        int32_t *row = ids + (size_t)b * T;
        int prev_maskable = 0, selected = 0;
        for (int t = 0; t < T; t++) {
            int32_t id = row[t];
            int maskable = (!attn || attn[(size_t)b * T + t]) && id >= 0 && id < mk->vocab_size && !mk->special[id];
            if (!maskable) {
                prev_maskable = 0;
                continue;
            }
            int starts_unit = !mk->whole_word || !mk->continuation[id] || !prev_maskable;
            prev_maskable = 1;
            if (starts_unit) selected = rng_uniform(r) < mk->probability;
            if (!selected) continue;
            positions[n] = b * T + t;
            labels[n] = id;
            n++;
            float u = rng_uniform(r);
            if (u < mk->mask_fraction) row[t] = mk->mask_id;
            else if (u < mk->mask_fraction + mk->random_fraction) row[t] = (int32_t)rng_below(r, (uint64_t)mk->vocab_size);
        }
    }
    return n;
}
