/* BERT WordPiece tokenizer, identical to Hugging Face BertTokenizerFast (tokenizers' BertNormalizer,
 * BertPreTokenizer and WordPiece model, plus the added-vocabulary split of special tokens).
 *
 * The pipeline for one text, in the order Hugging Face applies it:
 *   0. bytes -> code points, invalid UTF-8 read as U+FFFD (Python's errors="replace"; utf8.h)
 *   1. special tokens ("[CLS]", "[SEP]", ...) are cut out of the raw text and kept whole
 *   2. per remaining character (BertNormalizer):
 *        clean:   drop NUL, U+FFFD and "other" characters (Cc Cf Cs Co; unassigned code points
 *                 stay) except \t \n \r; whitespace (\t \n \r and Zs Zl Zp) becomes ' '
 *        chinese: a CJK ideograph c becomes " c " (Hugging Face's ranges: see is_cjk_cp)
 *        strip accents (default: when lower-casing): NFD, then drop Mn (nonspacing marks)
 *        lowercase: the full lower-case mapping, char by char (so 'Σ' -> 'σ', never 'ς')
 *      Note that the accents are stripped BEFORE lower-casing, unlike the Python BertTokenizer.
 *   3. pre-tokenize (BertPreTokenizer): whitespace separates words, and each punctuation
 *      character (ASCII 33-47, 58-64, 91-96, 123-126, or any Unicode P*) is a word of its own
 *   4. WordPiece: a word of more than 100 characters is [UNK]; otherwise greedy
 *      longest-match-first against the vocabulary, continuation pieces prefixed by "##";
 *      if some position matches nothing the whole word is [UNK].
 *
 * Everything is streamed: a word is collected in a fixed buffer (at most 100 characters are
 * kept; longer words only need counting) and turned into ids as soon as it ends, so encoding a
 * text allocates nothing. Unicode properties come from utf8proc; for the Basic Multilingual Plane
 * they are cached in a 64 KiB table built when the vocabulary is loaded. Hugging Face's Unicode
 * data is of mixed (mostly older) versions; the ~600 code points where it disagrees with
 * utf8proc's are listed, with Hugging Face's answer, in the generated hf_unicode_compat.h. */
#include "tokenizer/wordpiece.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/hf_unicode_compat.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

#define MAX_WORD_CHARS 100             /* Hugging Face's max_input_chars_per_word */
#define WORD_BYTES (4 * MAX_WORD_CHARS) /* a kept word is at most 100 chars of <= 4 bytes */
#define RUN_CAP 64                     /* combining characters held for canonical reordering */
#define N_SPECIAL 5

/* Per-code-point classes, cached for the BMP in wordpiece.cls. */
enum {
    C_WORD = 0,   /* a character that normalizes to itself and is part of a word */
    C_DROP = 1,   /* removed by the cleanup */
    C_SPACE = 2,  /* separates words */
    C_PUNCT = 3,  /* a word of its own; normalizes to itself */
    C_CJK = 4,    /* CJK ideograph: surrounded by spaces, then normalized */
    C_OTHER = 5   /* needs the general path (NFD, marks, lower-case mapping) */
};

/* A hash-table slot, 8 bytes so the table (2 slots per token) stays in cache: the token's
 * length is packed next to its id, so a probe reads the token text only when hash and length
 * both match. */
typedef struct vocab_slot {
    uint32_t hash;
    uint32_t id_len; /* id << 8 | min(length, 255); SLOT_EMPTY when free */
} vocab_slot;

#define SLOT_EMPTY 0xFFFFFFFFu
#define MAX_VOCAB (1 << 24) /* ids must fit in 24 bits */

struct wordpiece {
    int n_tokens;
    char *pool;          /* every token, NUL-terminated, back to back */
    uint32_t *tok_off;   /* token id -> offset in pool */
    uint32_t *tok_len;   /* token id -> length in bytes */
    vocab_slot *slots;   /* open addressing, linear probing; size mask + 1 (a power of two) */
    uint32_t mask;
    uint32_t max_token_bytes;

    int lowercase, strip_accents, chinese;
    int cls_id, sep_id, pad_id, unk_id, mask_id;
    /* Special tokens split out of the raw text before normalization (Hugging Face's added vocabulary). */
    int n_special;
    const char *special_str[N_SPECIAL];
    size_t special_len[N_SPECIAL];
    int special_id[N_SPECIAL];
    unsigned char special_first[256]; /* bytes that start some special token */

    uint8_t ascii_lower[128];
    uint8_t cls[0x10000]; /* class of each BMP code point, C_* */
};

/* ---------------------------------------------------------------- hashing */

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static inline uint32_t fnv_bytes(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

/* hash of "##" + s equals fnv_bytes(hash_prefix, s): the continuation prefix costs nothing. */
static uint32_t hash_prefix(void) { return fnv_bytes(FNV_OFFSET, "##", 2); }

static inline int bytes_equal(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Id of the token (cont ? "##" : "") + s[0..n) whose hash is h, or -1. */
static inline int vocab_find(const wordpiece *wp, uint32_t h, int cont, const char *s, size_t n) {
    const size_t full = n + (cont ? 2 : 0);
    const uint32_t packed_len = full < 255 ? (uint32_t)full : 255;
    for (uint32_t i = h & wp->mask;; i = (i + 1) & wp->mask) {
        const vocab_slot *sl = &wp->slots[i];
        if (sl->id_len == SLOT_EMPTY) return -1;
        if (sl->hash != h || (sl->id_len & 0xFF) != packed_len) continue;
        const int id = (int)(sl->id_len >> 8);
        if (packed_len == 255 && wp->tok_len[id] != full) continue;
        const char *t = wp->pool + wp->tok_off[id];
        if (cont) {
            if (t[0] != '#' || t[1] != '#') continue;
            t += 2;
        }
        if (bytes_equal(t, s, n)) return id;
    }
}

/* ---------------------------------------------------------------- Unicode classes */

/* Hugging Face's own answer for the few code points where its Unicode data and utf8proc's
 * differ (see hf_unicode_compat.h), or NULL. */
static const hf_compat_entry *hf_compat_find(uint32_t c) {
    size_t lo = 0, hi = sizeof hf_compat / sizeof hf_compat[0];
    if (c < hf_compat[0].cp) return NULL;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (hf_compat[mid].cp < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < sizeof hf_compat / sizeof hf_compat[0] && hf_compat[lo].cp == c ? &hf_compat[lo] : NULL;
}

/* Whitespace as BertNormalizer sees it: \t \n \r and Rust's char::is_whitespace (White_Space:
 * Zs, Zl, Zp and the controls 09-0D, 85 - the controls other than \t\n\r are dropped first). */
static int is_space_cp(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r' || c == ' ') return 1;
    if (c < 0x80) return 0;
    int cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/* Dropped by the cleanup: NUL, U+FFFD, and every "other" (C*) character except \t \n \r. */
static int is_dropped_cp(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    if (c == 0 || c == 0xFFFD) return 1;
    const hf_compat_entry *e = hf_compat_find(c);
    if (e) return (e->flags & HF_OTHER) != 0;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return 1;
    default:
        return 0;
    }
}

/* ASCII punctuation ranges 33-47, 58-64, 91-96, 123-126 (which include $ + < = > ^ ` | ~,
 * symbols in Unicode's eyes) or any Unicode punctuation category. */
static int is_punct_cp(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
        return 1;
    const hf_compat_entry *e = hf_compat_find(c);
    if (e) return (e->flags & HF_PUNCT) != 0;
    int cat = utf8proc_category((utf8proc_int32_t)c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* The "CJK Unified Ideographs" blocks as BERT defines them, with Hugging Face's Rust variant of
 * the original list: its fifth range starts at U+2B920, not U+2B820 (so U+2B820..U+2B91F, CJK
 * Extension E, stay inside words in BertTokenizerFast, unlike in the Python BertTokenizer). */
static int is_cjk_cp(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static uint32_t lower_simple(uint32_t c) {
    const hf_compat_entry *e = hf_compat_find(c);
    return e ? e->lower : (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
}

/* Class of a code point under the tokenizer's options (see the C_* enum). */
static int classify_cp(const wordpiece *wp, uint32_t c) {
    if (is_dropped_cp(c)) return C_DROP;
    if (is_space_cp(c)) return C_SPACE;
    if (wp->chinese && is_cjk_cp(c)) return C_CJK;
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    const hf_compat_entry *e = hf_compat_find(c);
    if (wp->strip_accents && e) {
        if (e->flags & HF_STRIP_DROPS) return C_OTHER;
    } else if (wp->strip_accents) {
        if (p->combining_class != 0 || p->category == UTF8PROC_CATEGORY_MN) return C_OTHER;
        utf8proc_int32_t d[8];
        int last = 0;
        utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)c, d, 8, UTF8PROC_DECOMPOSE, &last);
        if (n != 1 || (uint32_t)d[0] != c) return C_OTHER;
    }
    if (wp->lowercase && (c == 0x130 || lower_simple(c) != c)) return C_OTHER;
    return is_punct_cp(c) ? C_PUNCT : C_WORD;
}

static inline int class_of(const wordpiece *wp, uint32_t c) {
    return c < 0x10000 ? wp->cls[c] : classify_cp(wp, c);
}

/* ---------------------------------------------------------------- streaming state */

typedef struct tok_state {
    const wordpiece *wp;
    int32_t *out;   /* ids are written here while n < cap */
    size_t cap;
    size_t n;       /* ids produced so far (may exceed cap) */
    size_t stop;    /* tokenizing may stop once n >= stop (a single text truncated to cap) */
    /* debugging mode (wordpiece_basic_tokenize): words are written as text instead */
    int text_mode;
    char *text_out;
    size_t text_cap, text_n;

    /* the word being collected: UTF-8 bytes and the byte offset where each character starts */
    int nchars;      /* characters seen in this word (may exceed MAX_WORD_CHARS) */
    int nbytes;      /* bytes kept */
    uint16_t start[MAX_WORD_CHARS + 1];
    char word[WORD_BYTES + 4];

    /* nonzero-combining-class characters awaiting NFD's canonical reordering */
    int nrun;
    uint32_t run[RUN_CAP];
    uint8_t run_ccc[RUN_CAP];
} tok_state;

static inline void emit_id(tok_state *st, int id) {
    if (st->n < st->cap) st->out[st->n] = id;
    st->n++;
}

static void emit_text(tok_state *st, const char *s, size_t n) {
    if (st->text_n > 0 && st->text_n < st->text_cap) st->text_out[st->text_n] = ' ';
    if (st->text_n > 0) st->text_n++;
    for (size_t i = 0; i < n; i++, st->text_n++)
        if (st->text_n < st->text_cap) st->text_out[st->text_n] = s[i];
}

/* WordPiece on the collected word (1..100 characters): greedy longest match first. */
static void wordpiece_word(tok_state *st) {
    const wordpiece *wp = st->wp;
    const int k = st->nchars;
    st->start[k] = (uint16_t)st->nbytes;
    int32_t pieces[MAX_WORD_CHARS];
    int npieces = 0;
    uint32_t h[MAX_WORD_CHARS + 1]; /* h[e]: hash of the candidate piece ending before char e */
    int s = 0;
    while (s < k) {
        const int cont = s > 0;
        const size_t prefix = cont ? 2 : 0;
        const int s_byte = st->start[s];
        /* Hash every candidate [s, e) in one forward pass, up to the longest vocabulary token. */
        uint32_t hv = cont ? hash_prefix() : FNV_OFFSET;
        int e_max = s;
        for (int e = s + 1; e <= k; e++) {
            if ((size_t)(st->start[e] - s_byte) + prefix > wp->max_token_bytes) break;
            hv = fnv_bytes(hv, st->word + st->start[e - 1], (size_t)(st->start[e] - st->start[e - 1]));
            h[e] = hv;
            e_max = e;
        }
        int id = -1, e = e_max;
        for (; e > s; e--) {
            id = vocab_find(wp, h[e], cont, st->word + s_byte, (size_t)(st->start[e] - s_byte));
            if (id >= 0) break;
        }
        if (id < 0) {
            emit_id(st, wp->unk_id);
            return;
        }
        pieces[npieces++] = id;
        s = e;
    }
    for (int i = 0; i < npieces; i++) emit_id(st, pieces[i]);
}

static void end_word(tok_state *st) {
    if (st->nchars == 0) return;
    if (st->text_mode) {
        emit_text(st, st->word, (size_t)st->nbytes);
    } else if (st->nchars > MAX_WORD_CHARS) {
        emit_id(st, st->wp->unk_id);
    } else {
        wordpiece_word(st);
    }
    st->nchars = 0;
    st->nbytes = 0;
}

static inline void word_append(tok_state *st, uint32_t c) {
    if (st->nchars < MAX_WORD_CHARS) {
        st->start[st->nchars] = (uint16_t)st->nbytes;
        st->nbytes += utf8_encode(c, st->word + st->nbytes);
    }
    st->nchars++;
}

/* Step 3 (pre-tokenization) for one normalized character. */
static void pretokenize_char(tok_state *st, uint32_t c) {
    int k = class_of(st->wp, c);
    if (k == C_SPACE) {
        end_word(st);
    } else if (k == C_PUNCT || (k != C_WORD && is_punct_cp(c))) {
        end_word(st);
        word_append(st, c);
        end_word(st);
    } else {
        word_append(st, c);
    }
}

/* Lower-casing (after accent stripping), then pre-tokenization. */
static void lower_char(tok_state *st, uint32_t c) {
    if (!st->wp->lowercase) {
        pretokenize_char(st, c);
    } else if (c == 0x130) {
        /* The one unconditional multi-character lower-case mapping (SpecialCasing.txt), which
         * utf8proc's simple mapping lacks: 'İ' -> 'i' + U+0307 COMBINING DOT ABOVE. */
        pretokenize_char(st, 'i');
        pretokenize_char(st, 0x307);
    } else {
        pretokenize_char(st, lower_simple(c));
    }
}

/* Ends a run of combining characters: NFD orders it by combining class (a stable sort). The
 * nonspacing marks were removed already, which commutes with the stable sort. */
static void flush_run(tok_state *st) {
    for (int i = 0; i < st->nrun; i++) lower_char(st, st->run[i]);
    st->nrun = 0;
}

/* Steps 2b-2d for one character that survived the cleanup. */
static void normalize_char(tok_state *st, uint32_t c) {
    const wordpiece *wp = st->wp;
    if (!wp->strip_accents) {
        lower_char(st, c);
        return;
    }
    const hf_compat_entry *e = hf_compat_find(c);
    if (e) {
        /* Hugging Face's tables do not decompose it: either a mark to drop, or kept whole. */
        if (utf8proc_get_property((utf8proc_int32_t)c)->combining_class == 0) flush_run(st);
        if (!(e->flags & HF_STRIP_DROPS)) {
            flush_run(st);
            lower_char(st, c);
        }
        return;
    }
    utf8proc_int32_t d[32];
    int last = 0;
    utf8proc_ssize_t nd = utf8proc_decompose_char((utf8proc_int32_t)c, d, 32, UTF8PROC_DECOMPOSE, &last);
    if (nd < 1 || nd > 32) {
        d[0] = (utf8proc_int32_t)c;
        nd = 1;
    }
    for (utf8proc_ssize_t i = 0; i < nd; i++) {
        const utf8proc_property_t *p = utf8proc_get_property(d[i]);
        int ccc = p->combining_class;
        if (ccc == 0) flush_run(st);
        if (p->category == UTF8PROC_CATEGORY_MN) continue; /* the accent stripping */
        if (ccc == 0) {
            lower_char(st, (uint32_t)d[i]);
            continue;
        }
        /* A spacing mark with a combining class: insert stably by class. */
        if (st->nrun == RUN_CAP) flush_run(st); /* absurdly long run: give up reordering across it */
        int j = st->nrun++;
        while (j > 0 && st->run_ccc[j - 1] > ccc) {
            st->run[j] = st->run[j - 1];
            st->run_ccc[j] = st->run_ccc[j - 1];
            j--;
        }
        st->run[j] = (uint32_t)d[i];
        st->run_ccc[j] = (uint8_t)ccc;
    }
}

/* A piece of raw text between special tokens: normalize, pre-tokenize, WordPiece. */
static void tokenize_piece(tok_state *st, const unsigned char *s, size_t n) {
    const wordpiece *wp = st->wp;
    size_t i = 0;
    while (i < n) {
        if (st->n >= st->stop) return; /* enough ids for the truncated output */
        unsigned c = s[i];
        if (c < 0x80) {
            /* ASCII fast path: a class-table look-up and a lower-case table. */
            int k = wp->cls[c];
            if (k == C_DROP) {
                i++;
                continue;
            }
            if (st->nrun) flush_run(st);
            if (k == C_WORD || k == C_OTHER) {
                if (st->nchars < MAX_WORD_CHARS) {
                    st->start[st->nchars] = (uint16_t)st->nbytes;
                    st->word[st->nbytes++] = (char)wp->ascii_lower[c];
                }
                st->nchars++;
            } else if (k == C_SPACE) {
                end_word(st);
            } else if (k == C_PUNCT) {
                end_word(st);
                word_append(st, c);
                end_word(st);
            }
            i++;
            continue;
        }
        uint32_t cp;
        i += (size_t)utf8_decode_replace(s + i, n - i, &cp);
        int k = class_of(wp, cp);
        switch (k) {
        case C_DROP:
            break;
        case C_SPACE:
            flush_run(st);
            end_word(st);
            break;
        case C_WORD:
            flush_run(st);
            word_append(st, cp);
            break;
        case C_PUNCT:
            flush_run(st);
            end_word(st);
            word_append(st, cp);
            end_word(st);
            break;
        case C_CJK:
            flush_run(st);
            end_word(st);
            normalize_char(st, cp);
            flush_run(st);
            end_word(st);
            break;
        default:
            normalize_char(st, cp);
            break;
        }
    }
    flush_run(st);
    end_word(st);
}

/* The length of the special token starting at s[0..n), and its id in *id; 0 when none does.
 * Leftmost-longest, as Hugging Face's added-vocabulary matcher. */
static size_t match_special(const wordpiece *wp, const unsigned char *s, size_t n, int *id) {
    size_t best = 0;
    for (int t = 0; t < wp->n_special; t++) {
        size_t len = wp->special_len[t];
        if (len > best && len <= n && memcmp(s, wp->special_str[t], len) == 0) {
            best = len;
            *id = wp->special_id[t];
        }
    }
    return best;
}

/* The whole text: split out special tokens, tokenize what lies between them. */
static void tokenize_text(tok_state *st, const char *text, size_t len) {
    const wordpiece *wp = st->wp;
    const unsigned char *s = (const unsigned char *)text;
    size_t piece = 0;
    for (size_t i = 0; i < len && st->n < st->stop;) {
        if (wp->special_first[s[i]]) {
            int id = -1;
            size_t m = match_special(wp, s + i, len - i, &id);
            if (m) {
                tokenize_piece(st, s + piece, i - piece);
                if (st->text_mode) emit_text(st, text + i, m);
                else emit_id(st, id);
                i += m;
                piece = i;
                continue;
            }
        }
        /* Special tokens start with an ASCII or a UTF-8 lead byte, and the decoder never
         * swallows such a byte into another sequence, so every byte position is a valid start. */
        i++;
    }
    tokenize_piece(st, s + piece, len - piece);
}

static void state_init(tok_state *st, const wordpiece *wp, int32_t *out, size_t cap) {
    st->wp = wp;
    st->out = out;
    st->cap = cap;
    st->n = 0;
    st->stop = SIZE_MAX;
    st->text_mode = 0;
    st->text_out = NULL;
    st->text_cap = st->text_n = 0;
    st->nchars = st->nbytes = 0;
    st->nrun = 0;
}

size_t wordpiece_tokenize(const wordpiece *wp, const char *text, size_t len, int32_t *ids, size_t cap) {
    tok_state st;
    state_init(&st, wp, ids, cap);
    tokenize_text(&st, text, len);
    return st.n;
}

size_t wordpiece_basic_tokenize(const wordpiece *wp, const char *text, size_t len, char *out, size_t cap) {
    tok_state st;
    state_init(&st, wp, NULL, 0);
    st.text_mode = 1;
    st.text_out = out;
    st.text_cap = cap;
    tokenize_text(&st, text, len);
    if (cap) out[st.text_n < cap ? st.text_n : cap - 1] = '\0';
    return st.text_n;
}

/* ---------------------------------------------------------------- encode (specials, truncation, padding) */

/* Hugging Face's "longest_first" truncation of a pair to at most budget tokens in all:
 * the shorter sequence is kept whole when it can be, else both get half (the longer one,
 * or the second on a tie, gets the odd token). */
static void truncate_pair(size_t len_a, size_t len_b, size_t budget, size_t *keep_a, size_t *keep_b) {
    if (len_a + len_b <= budget) {
        *keep_a = len_a;
        *keep_b = len_b;
        return;
    }
    int swap = len_a > len_b;
    size_t n1 = swap ? len_b : len_a, n2;
    n2 = n1 > budget ? n1 : (n1 > budget - n1 ? n1 : budget - n1);
    if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
    }
    size_t t1 = swap ? n2 : n1, t2 = swap ? n1 : n2;
    *keep_a = len_a < t1 ? len_a : t1;
    *keep_b = len_b < t2 ? len_b : t2;
}

int wordpiece_encode(const wordpiece *wp, const char *text, size_t text_len, const char *pair, size_t pair_len,
                     int max_length, int pad, int32_t *input_ids, int32_t *attention_mask, int32_t *token_type_ids,
                     int *out_len, bertc_error *err) {
    if (!wp || (!text && text_len) || (!pair && pair_len) || !input_ids || !attention_mask || !token_type_ids)
        return bertc_errorf(err, BERTC_EINVAL, "wordpiece_encode: missing argument");
    const int n_special = pair ? 3 : 2;
    if (max_length < n_special)
        return bertc_errorf(err, BERTC_EINVAL, "wordpiece_encode: max_length %d leaves no room for the %d special tokens",
                            max_length, n_special);
    const size_t budget = (size_t)(max_length - n_special);
    /* The first text goes straight to its place after [CLS]; the pair, if any, is collected in
     * token_type_ids (filled last) and moved behind the first [SEP]. Only the first `budget`
     * ids of each are stored; the rest are just counted, which is all truncation needs. */
    tok_state st;
    state_init(&st, wp, input_ids + 1, budget);
    /* A single text only needs its first `budget` ids. A pair needs both full lengths, as
     * longest-first truncation compares them. */
    if (!pair) st.stop = budget;
    tokenize_text(&st, text ? text : "", text_len);
    size_t len_a = st.n, len_b = 0;
    if (pair) {
        state_init(&st, wp, token_type_ids, budget);
        tokenize_text(&st, pair, pair_len);
        len_b = st.n;
    }
    size_t keep_a, keep_b;
    if (pair) {
        truncate_pair(len_a, len_b, budget, &keep_a, &keep_b);
    } else {
        keep_a = len_a < budget ? len_a : budget;
        keep_b = 0;
    }
    size_t n = 0;
    input_ids[n++] = wp->cls_id;
    n += keep_a;
    input_ids[n++] = wp->sep_id;
    size_t first_len = n;
    if (pair) {
        memmove(input_ids + n, token_type_ids, keep_b * sizeof *input_ids);
        n += keep_b;
        input_ids[n++] = wp->sep_id;
    }
    for (size_t i = 0; i < n; i++) {
        attention_mask[i] = 1;
        token_type_ids[i] = i < first_len ? 0 : 1;
    }
    if (pad) {
        for (size_t i = n; i < (size_t)max_length; i++) {
            input_ids[i] = wp->pad_id;
            attention_mask[i] = 0;
            token_type_ids[i] = 0;
        }
    }
    if (out_len) *out_len = (int)n;
    return BERTC_OK;
}

/* ---------------------------------------------------------------- loading */

int wordpiece_vocab_size(const wordpiece *wp) { return wp->n_tokens; }
int wordpiece_cls_id(const wordpiece *wp) { return wp->cls_id; }
int wordpiece_sep_id(const wordpiece *wp) { return wp->sep_id; }
int wordpiece_pad_id(const wordpiece *wp) { return wp->pad_id; }
int wordpiece_unk_id(const wordpiece *wp) { return wp->unk_id; }
int wordpiece_mask_id(const wordpiece *wp) { return wp->mask_id; }

int wordpiece_token_id(const wordpiece *wp, const char *token) {
    size_t n = strlen(token);
    return vocab_find(wp, fnv_bytes(FNV_OFFSET, token, n), 0, token, n);
}

const char *wordpiece_token(const wordpiece *wp, int id) {
    if (id < 0 || id >= wp->n_tokens) return NULL;
    return wp->pool + wp->tok_off[id];
}

void wordpiece_free(wordpiece *wp) {
    if (!wp) return;
    free(wp->pool);
    free(wp->tok_off);
    free(wp->tok_len);
    free(wp->slots);
    free(wp);
}

static int read_file(const char *path, char **out, size_t *out_len, bertc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return bertc_errorf(err, BERTC_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap > ((size_t)1 << 30)) {
                free(buf);
                fclose(f);
                return bertc_errorf(err, BERTC_EFORMAT, "%s: larger than 1 GiB", path);
            }
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return bertc_errorf(err, BERTC_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return BERTC_OK;
}

typedef struct tokenizer_options {
    int lowercase;
    int strip_accents; /* -1: same as lowercase */
    int chinese;
    char special[N_SPECIAL][64]; /* cls, sep, pad, unk, mask */
} tokenizer_options;

static void options_default(tokenizer_options *o, int lowercase) {
    o->lowercase = lowercase;
    o->strip_accents = -1;
    o->chinese = 1;
    static const char *names[N_SPECIAL] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"};
    for (int i = 0; i < N_SPECIAL; i++) snprintf(o->special[i], sizeof o->special[i], "%s", names[i]);
}

static int build(wordpiece **out, const char *vocab_path, const tokenizer_options *o, bertc_error *err) {
    *out = NULL;
    char *text;
    size_t len;
    int rc = read_file(vocab_path, &text, &len, err);
    if (rc) return rc;
    wordpiece *wp = calloc(1, sizeof *wp);
    if (!wp) {
        free(text);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", vocab_path);
    }
    /* One token a line, id = line number. Like Hugging Face, the line ending (and any trailing
     * \r) is not part of the token; the last line may lack its newline. */
    size_t n_lines = 0;
    for (size_t i = 0; i < len; i++) n_lines += text[i] == '\n';
    if (len && text[len - 1] != '\n') n_lines++;
    if (n_lines == 0 || n_lines >= MAX_VOCAB) {
        free(text);
        wordpiece_free(wp);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: %s", vocab_path, n_lines ? "more than 16 million tokens" : "empty vocabulary");
    }
    wp->n_tokens = (int)n_lines;
    wp->pool = text; /* the newlines become the terminators */
    wp->tok_off = malloc(n_lines * sizeof *wp->tok_off);
    wp->tok_len = malloc(n_lines * sizeof *wp->tok_len);
    uint32_t size = 1;
    while (size < 2 * n_lines) size *= 2;
    wp->mask = size - 1;
    wp->slots = malloc((size_t)size * sizeof *wp->slots);
    if (!wp->tok_off || !wp->tok_len || !wp->slots) {
        wordpiece_free(wp);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", vocab_path);
    }
    for (uint32_t i = 0; i < size; i++) wp->slots[i].id_len = SLOT_EMPTY;
    size_t pos = 0;
    for (size_t id = 0; id < n_lines; id++) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        size_t tl = end - pos;
        while (tl > 0 && text[pos + tl - 1] == '\r') tl--;
        text[pos + tl] = '\0';
        if (end < len) text[end] = '\0';
        if (tl > 0xFFFF) {
            wordpiece_free(wp);
            return bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: token longer than 65535 bytes", vocab_path, id + 1);
        }
        wp->tok_off[id] = (uint32_t)pos;
        wp->tok_len[id] = (uint32_t)tl;
        if (tl > wp->max_token_bytes) wp->max_token_bytes = (uint32_t)tl;
        /* Insert; a repeated token takes its last line's id, as in Hugging Face's vocab map. */
        uint32_t h = fnv_bytes(FNV_OFFSET, text + pos, tl);
        uint32_t s = h & wp->mask;
        const uint32_t packed = (uint32_t)id << 8 | (tl < 255 ? (uint32_t)tl : 255);
        for (;; s = (s + 1) & wp->mask) {
            vocab_slot *sl = &wp->slots[s];
            if (sl->id_len == SLOT_EMPTY) {
                sl->hash = h;
                sl->id_len = packed;
                break;
            }
            uint32_t other = sl->id_len >> 8;
            if (sl->hash == h && wp->tok_len[other] == tl && !memcmp(wp->pool + wp->tok_off[other], text + pos, tl)) {
                sl->id_len = packed;
                break;
            }
        }
        pos = end + 1;
    }

    wp->lowercase = o->lowercase;
    wp->strip_accents = o->strip_accents < 0 ? o->lowercase : o->strip_accents;
    wp->chinese = o->chinese;
    int *ids[N_SPECIAL] = {&wp->cls_id, &wp->sep_id, &wp->pad_id, &wp->unk_id, &wp->mask_id};
    static const char *roles[N_SPECIAL] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
    for (int i = 0; i < N_SPECIAL; i++) {
        *ids[i] = wordpiece_token_id(wp, o->special[i]);
        if (*ids[i] < 0 && i != 4) { /* [MASK] is optional: classification never needs it */
            int code = bertc_errorf(err, BERTC_EFORMAT, "%s: special token %s '%s' is not in the vocabulary", vocab_path,
                                    roles[i], o->special[i]);
            wordpiece_free(wp);
            return code;
        }
        if (*ids[i] >= 0) {
            int t = wp->n_special++;
            wp->special_id[t] = *ids[i];
            wp->special_str[t] = wordpiece_token(wp, *ids[i]);
            wp->special_len[t] = strlen(wp->special_str[t]);
            if (wp->special_len[t] == 0) wp->n_special--; /* an empty token matches nothing */
            else wp->special_first[(unsigned char)wp->special_str[t][0]] = 1;
        }
    }
    for (uint32_t c = 0; c < 0x10000; c++) wp->cls[c] = (uint8_t)classify_cp(wp, c);
    for (int c = 0; c < 128; c++) wp->ascii_lower[c] = (uint8_t)(wp->lowercase ? lower_simple((uint32_t)c) : (uint32_t)c);
    *out = wp;
    return BERTC_OK;
}

int wordpiece_load(wordpiece **out, const char *vocab_path, int do_lower_case, bertc_error *err) {
    if (!out || !vocab_path) return bertc_errorf(err, BERTC_EINVAL, "wordpiece_load: missing argument");
    tokenizer_options o;
    options_default(&o, do_lower_case != 0);
    return build(out, vocab_path, &o, err);
}

/* A boolean field of tokenizer_config.json; null or absent leaves *v unchanged. */
static int json_bool(const cJSON *root, const char *field, int *v, const char *path, bertc_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!j || cJSON_IsNull(j)) return BERTC_OK;
    if (!cJSON_IsBool(j)) return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be true, false or null", path, field);
    *v = cJSON_IsTrue(j);
    return BERTC_OK;
}

/* A special-token field: a string, or an object with a "content" string (older configs). */
static int json_token(const cJSON *root, const char *field, char *dst, size_t cap, const char *path, bertc_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, field);
    if (!j || cJSON_IsNull(j)) return BERTC_OK;
    if (cJSON_IsObject(j)) j = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsString(j) || strlen(j->valuestring) == 0 || strlen(j->valuestring) >= cap)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: field '%s' must be a non-empty token string", path, field);
    snprintf(dst, cap, "%s", j->valuestring);
    return BERTC_OK;
}

int wordpiece_load_dir(wordpiece **out, const char *model_dir, bertc_error *err) {
    if (!out || !model_dir) return bertc_errorf(err, BERTC_EINVAL, "wordpiece_load_dir: missing argument");
    *out = NULL;
    char path[4096], vocab[4096];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", model_dir);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    tokenizer_options o;
    options_default(&o, 1);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        char *text;
        size_t len;
        int rc = read_file(path, &text, &len, err);
        if (rc) return rc;
        cJSON *root = cJSON_ParseWithLength(text, len);
        free(text);
        if (!root || !cJSON_IsObject(root)) {
            cJSON_Delete(root);
            return bertc_errorf(err, BERTC_EFORMAT, "%s: not a JSON object", path);
        }
        static const char *fields[N_SPECIAL] = {"cls_token", "sep_token", "pad_token", "unk_token", "mask_token"};
        rc = json_bool(root, "do_lower_case", &o.lowercase, path, err);
        if (!rc) rc = json_bool(root, "strip_accents", &o.strip_accents, path, err);
        if (!rc) rc = json_bool(root, "tokenize_chinese_chars", &o.chinese, path, err);
        for (int i = 0; i < N_SPECIAL && !rc; i++) rc = json_token(root, fields[i], o.special[i], sizeof o.special[i], path, err);
        cJSON_Delete(root);
        if (rc) return rc;
    }
    return build(out, vocab, &o, err);
}
