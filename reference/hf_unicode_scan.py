"""Runs every Unicode code point through Hugging Face's BertTokenizerFast normalizer and
pre-tokenizer, as "a" + chr(cp) + "a", and prints one line per code point:
    HEX<TAB>words joined by single spaces
(words never contain a space). `bertc`'s tests/tokenizer_scan tool prints the same for the C
tokenizer, so `diff` of the two shows every code point on which they disagree.

usage: python reference/hf_unicode_scan.py MODEL_DIR > hf_scan.txt
"""
import sys

from transformers import BertTokenizerFast


def main():
    tok = BertTokenizerFast.from_pretrained(sys.argv[1])
    norm = tok.backend_tokenizer.normalizer
    pre = tok.backend_tokenizer.pre_tokenizer
    out = sys.stdout.buffer
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # not representable in a Python str that Rust accepts
        words = [w for w, _ in pre.pre_tokenize_str(norm.normalize_str("a" + chr(cp) + "a"))]
        out.write(b"%X\t%s\n" % (cp, " ".join(words).encode("utf-8")))


if __name__ == "__main__":
    main()
