/* UTF-8 decoding with replacement, exactly as Python's bytes.decode("utf-8", errors="replace").
 *
 * Python (like the Unicode standard's "maximal subpart" practice) replaces each maximal prefix
 * of a well-formed sequence that is cut short, and each byte that can start no sequence, by one
 * U+FFFD, and resumes at the first byte that did not fit. Well-formed sequences (Unicode
 * Table 3-7) exclude overlong forms, encoded surrogates and values above U+10FFFF:
 *   00..7F | C2..DF 80..BF | E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF
 *   | EE..EF 80..BF 80..BF | F0 90..BF 80..BF 80..BF | F1..F3 80..BF 80..BF 80..BF
 *   | F4 80..8F 80..BF 80..BF
 * So "\xED\xA0\x80" (an encoded surrogate) gives three U+FFFD, "\xE2\x82" one, "\xC0\xAF" two. */
#ifndef BERTC_TOKENIZER_UTF8_H
#define BERTC_TOKENIZER_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/* Decodes the code point at s[0..n) (n >= 1) into *cp; returns the bytes consumed (1..4).
 * Bytes that are not well-formed UTF-8 give U+FFFD as described above. */
static inline int utf8_decode_replace(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int need;          /* continuation bytes that follow the lead byte */
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlong 3-byte forms */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* no overlong 4-byte forms */
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = UTF8_REPLACEMENT; /* 80..C1, F5..FF can start no sequence */
        return 1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) break;
        unsigned b = s[i];
        if (b < lo || b > hi) {
            *cp = UTF8_REPLACEMENT; /* the valid prefix s[0..i) becomes one U+FFFD */
            return i;
        }
        v = (v << 6) | (b & 0x3F);
        lo = 0x80;
        hi = 0xBF;
        if (i == need) {
            *cp = v;
            return need + 1;
        }
    }
    /* Cut short by the end of the input: the whole valid prefix is one U+FFFD. */
    *cp = UTF8_REPLACEMENT;
    return (int)n;
}

/* Writes cp as UTF-8 into out (room for 4 bytes); returns the length. cp must be a scalar value. */
static inline int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
