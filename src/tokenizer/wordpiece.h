/* BERT tokenizer, identical to Hugging Face BertTokenizer / BertTokenizerFast:
 * basic tokenizer (clean, CJK split, lowercase, strip accents, punctuation split)
 * then WordPiece greedy longest-match-first with the "##" continuation prefix.
 * Unicode data (NFD, categories, case mapping) come from utf8proc. */
#ifndef BERTC_TOKENIZER_WORDPIECE_H
#define BERTC_TOKENIZER_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "bertc.h"

typedef struct wordpiece wordpiece;

/* Reads vocab.txt (one token a line, id = line number). */
int wordpiece_load(wordpiece **out, const char *vocab_path, int do_lower_case, bertc_error *err);
/* Reads DIR/vocab.txt, and do_lower_case (and strip_accents, tokenize_chinese_chars)
 * from DIR/tokenizer_config.json when present (default: lower case). */
int wordpiece_load_dir(wordpiece **out, const char *model_dir, bertc_error *err);
void wordpiece_free(wordpiece *wp);

int wordpiece_vocab_size(const wordpiece *wp);
/* Id of a token string, or -1 when it is not in the vocabulary. */
int wordpiece_token_id(const wordpiece *wp, const char *token);
/* Token string of an id, or NULL when out of range. */
const char *wordpiece_token(const wordpiece *wp, int id);
/* Special tokens, looked up by name in the vocabulary. */
int wordpiece_cls_id(const wordpiece *wp);
int wordpiece_sep_id(const wordpiece *wp);
int wordpiece_pad_id(const wordpiece *wp);
int wordpiece_unk_id(const wordpiece *wp);
int wordpiece_mask_id(const wordpiece *wp);

/* Encodes text (and an optional pair, NULL for none) the way
 *   tokenizer(text, text_pair, truncation=True, max_length=max_length,
 *             padding="max_length" if pad else False)
 * does: [CLS] a [SEP] (b [SEP]), truncation "longest_first".
 * input_ids, attention_mask and token_type_ids must each hold max_length entries;
 * *out_len receives the number of real (unpadded) tokens. Bytes that are not valid
 * UTF-8 are read as U+FFFD, as Python's errors="replace" does. Special-token strings in
 * the text ("[SEP]", ...) become those tokens, as in Hugging Face. max_length must leave
 * room for the special tokens (2, or 3 with a pair), else BERTC_EINVAL. An empty pair
 * (pair != NULL, pair_len 0) is still a pair, [CLS] a [SEP] [SEP], as in Hugging Face's
 * batch calls and its Rust backend (a single Python call would drop an empty text_pair). */
int wordpiece_encode(const wordpiece *wp, const char *text, size_t text_len,
                     const char *pair, size_t pair_len, int max_length, int pad,
                     int32_t *input_ids, int32_t *attention_mask, int32_t *token_type_ids,
                     int *out_len, bertc_error *err);

/* The WordPiece ids of one text, without special tokens and without truncation: writes the
 * first min(total, cap) ids to ids and returns the total, so a caller can grow its buffer and
 * call again when the total exceeds cap. Never fails; allocates nothing. */
size_t wordpiece_tokenize(const wordpiece *wp, const char *text, size_t len, int32_t *ids, size_t cap);

/* For tests and debugging: the text after normalization and pre-tokenization, words joined by
 * one space (special tokens kept as they are; a word longer than 100 characters, [UNK] for
 * WordPiece, shows its first 100). Writes at most cap bytes including a NUL; returns the full
 * length. */
size_t wordpiece_basic_tokenize(const wordpiece *wp, const char *text, size_t len, char *out, size_t cap);

#endif
