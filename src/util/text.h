/* Small text helpers shared by the readers of outside files. */
#ifndef BERTC_UTIL_TEXT_H
#define BERTC_UTIL_TEXT_H

#include <stddef.h>

/* Where s[0..n) stops being valid UTF-8 (n when it is valid). Strict, as the Rust and Python
 * readers of JSON and safetensors are: no overlong forms, no surrogates, nothing past U+10FFFF. */
size_t utf8_valid_prefix(const char *s, size_t n);

#endif
