"""Hugging Face reference ids for bertc's tokenizer.

    python reference/hf_tokenize.py fixtures --model DIR --imdb aclImdb_v1.tar.gz --out tests/fixtures/tokenizer
        writes hard.cases (hand-made hard cases) and imdb.cases.gz (IMDB reviews and pairs)
    python reference/hf_tokenize.py jsonl --model DIR [--max-length N] [--no-pad] < in.jsonl > out.jsonl
        the same output as `bertc tokenize` (N = 0: no truncation), from BertTokenizerFast

Case file format (binary-safe: texts are raw bytes, possibly invalid UTF-8, given with lengths):
    BERTC-TOKENIZER-CASES 1
    case NAME MAX_LENGTH PAD HAS_PAIR        (MAX_LENGTH 0: no truncation; PAD 0 or 1)
    text NBYTES
    <NBYTES raw bytes>
    pair NBYTES                              (only when HAS_PAIR is 1)
    <NBYTES raw bytes>
    ids N id id ...
    mask N m m ...
    types N t t ...
Texts are given to Hugging Face as bytes.decode("utf-8", errors="replace"), which is what bertc
does with invalid bytes.
"""
import argparse
import gzip
import json
import os
import random
import sys
import tarfile


def load_tokenizer(model_dir):
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(model_dir)


def hf_encode(tok, texts, pairs=None, max_length=128, pad=True):
    """Batch-encodes like bertc: max_length 0 means no truncation and no padding."""
    kw = {}
    if max_length > 0:
        kw = dict(truncation=True, max_length=max_length, padding="max_length" if pad else False)
    if pairs is None:
        return tok(texts, **kw)
    return tok(texts, pairs, **kw)


def imdb_reviews(tarball, parts=("train/pos", "train/neg", "test/pos", "test/neg")):
    """Yields (member name, raw bytes) of the reviews in the given folders, in tarball order."""
    prefixes = tuple("aclImdb/%s/" % p for p in parts)
    with tarfile.open(tarball) as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".txt") and m.name.startswith(prefixes):
                yield m.name, tf.extractfile(m).read()


def dec(b):
    return b.decode("utf-8", errors="replace")


# ------------------------------------------------------------------ hand-made hard cases

def hard_cases():
    """(name, text bytes, pair bytes or None, max_length, pad)."""
    u = lambda s: s.encode("utf-8")
    singles = [
        ("plain", u("Hello, world! This movie was GREAT... wasn't it? 10/10 <br /><br />Loved it.")),
        ("numbers", u("$1,000,000.50 is 50% of 2,000,001; 3.14159 and 1e-10 (approx.) #1 @home ~tilde^ `x` |pipe|")),
        ("accents", u("Café naïve résumé Ångström Zoë façade Tiếng Việt crème brûlée ÉCOLE")),
        ("combining", u("e\u0301cole a\u0316\u0301 o\u0308\u0323 x\u0301\u0302\u0303\u0304 \u0301start")),
        ("fullwidth", u("ＡＢＣ　１２３！？ ｈｅｌｌｏ，ｗｏｒｌｄ ｶﾀｶﾅ")),
        ("cjk", u("我爱北京天安门 日本語のテキストです。 中文，标点！ 𠀀𪛖 \uf900\ufa0b \U0002F800 \u3400")),
        ("hangul", u("한국어 텍스트 안녕하세요")),
        ("emoji", u("I ❤️ this 👨\u200d👩\u200d👧\u200d👦 family 👍🏽 🇫🇷 🥰🤗 ☺ ©®™")),
        ("zero_width", u("zero\u200bwidth non\u200cjoiner joi\u200dner bom\ufeffx soft\u00adhyphen word\u2060joiner \u2066iso\u2069")),
        ("controls", b"a\x00b c\x01d e\x7ff g\x1bh tab\there new\nline cr\rret vt\x0bff\x0cfs\x1cus\x1f"),
        ("unicode_spaces", u("nb\u00a0sp ideo\u3000sp nnb\u202fsp en\u2002em\u2003thin\u2009 line\u2028para\u2029nel\u0085ogham\u1680x")),
        ("replacement_char", u("a\ufffdb \ufffd c\ufffd")),
        ("greek", u("ΣΑΣ ὈΔΥΣΣΕΎΣ σοφός Ἀθῆναι ΐ ᾼ")),
        ("turkish", u("İSTANBUL İi Iı ıi DİYARBAKIR")),
        ("german", u("STRASSE straße ẞ Maß")),
        ("ligatures", u("ﬁne ﬂow Ǆ ǅ ǆ Ĳ ŉ ſ")),
        ("other_cases", u("Ꭰ ꭰ Ა ა Ⓐ ⓐ 𐐀 𐐨 Ω K Å")),
        ("scripts", u("مرحبا بالعالم שָׁלוֹם नमस्ते สวัสดีครับ ជំរាបសួរ Привет, МИР!")),
        ("punct_unicode", u("«quoted» „low“ ‘single’ — dash – en … ellipsis ¡hola! ¿qué? ·middle· §1 ¶ †‡ ※ ‰ ′″ 〈〉【】「」『』、。")),
        ("symbols", u("± × ÷ ° € £ ¥ ¢ ∞ ≠ ≤ ≥ → ← ♪ ♥ ★ ✓ ∑ √")),
        ("math_alnum", u("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝟏𝟐𝟑 ① ⑴ ½ ²")),
        ("specials", u("[CLS] hi [SEP] there [PAD][UNK] x[MASK]y [cls] [Sep] [SEP][SEP] [unused0] [ CLS ] [[SEP]]")),
        ("special_split", u("ab[SEP]cd é[SEP]é")),
        ("long_100", u("a" * 100)),
        ("long_101", u("a" * 101)),
        ("long_mixed", u("word " + "ab" * 60 + " after " + "x" * 99 + "y " + "é" * 100 + " " + "é" * 101 + " end")),
        ("long_marks", u("a" + "\u0301" * 150 + "b " + "e\u0301" * 101)),
        ("long_unk_pieces", u("antidisestablishmentarianism supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis")),
        ("no_match", u("\u2603\u2603 ∰ ꙮ 𓀀 xyz\u2603")),
        ("html", u("<br /><br />This is <i>italic</i> &amp; <a href=\"http://x.com/a?b=1&c=2\">link</a> mail@example.com")),
        ("empty", b""),
        ("only_space", b"   \t \n  "),
        ("only_punct", b"!!!...???"),
        ("only_control", b"\x00\x01\x02\x7f"),
        ("only_zero_width", u("\u200b\u200d\ufeff")),
        # Invalid UTF-8 in several forms: Python's errors="replace" makes U+FFFD, which is dropped.
        ("bad_lone_continuation", b"ab\x80cd \xbf\xbf x\x80"),
        ("bad_truncated_end", b"caf\xc3"),
        ("bad_truncated_mid", b"a\xc3(b \xe2\x82x \xe2\x82\xe2\x82\xac \xf0\x9f\x98 done"),
        ("bad_truncated_emoji_end", b"smile \xf0\x9f\x98"),
        ("bad_overlong", b"slash\xc0\xafslash \xe0\x80\xaf \xf0\x80\x80\xaf \xc1\xbf"),
        ("bad_surrogates", b"sur\xed\xa0\x80rogate \xed\xbf\xbf \xed\xa0\xbd\xed\xb8\x80 pair"),
        ("bad_above_max", b"big\xf4\x90\x80\x80x \xf5\x80\x80\x80 \xf7\xbf\xbf\xbf \xf8\x88\x80\x80\x80 \xfc\x84\x80\x80\x80\x80"),
        ("bad_ff_fe", b"\xff\xfeh\x00i\x00 \xfe\xff"),
        ("bad_latin1", b"caf\xe9 na\xefve r\xe9sum\xe9"),
        ("bad_before_special", b"\xe2[SEP]\xe2\x82[CLS]x"),
        ("bad_mixed_valid", b"\xce\xa3\xce\x91\xce\xa3 \xce\xa3\xce caf\xc3\xa9"),
    ]
    # Every code point of bertc's Hugging Face compatibility table (src/tokenizer/hf_unicode_compat.h),
    # each as "a" + c + "a", and the CJK Extension E range Hugging Face does not split.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "src", "tokenizer", "hf_unicode_compat.h")) as f:
        compat = [int(line.split(",")[0].strip(" {"), 16) for line in f if line.startswith("    {0x")]
    singles.append(("unicode_compat", u(" ".join("a%sa" % chr(c) for c in compat))))
    singles.append(("cjk_ext_e", u("".join(chr(c) for c in range(0x2B810, 0x2B930, 7)))))
    singles.append(("canonical_order", u("a\U0001D16D\U0001D165b c\U0001D165\U0001D16Dd e\u0301\U0001D16D\u0316\U0001D165f")))
    cases = []
    for name, text in singles:
        cases.append((name, text, None, 0, 0))
        cases.append((name + "/m16", text, None, 16, 1))
    long_a = u(" ".join("alpha%d" % i for i in range(40)))
    long_b = u(" ".join("beta" for _ in range(25)))
    short = u("short one")
    pairs = [
        ("pair_basic", u("How are you?"), u("I'm fine, thanks.")),
        ("pair_empty_b", u("only the first"), b""),
        ("pair_empty_a", b"", u("only the second")),
        ("pair_both_empty", b"", b""),
        ("pair_long_a", long_a, short),
        ("pair_long_b", short, long_b),
        ("pair_both_long", long_a, long_b),
        ("pair_equal", u("a b c d e f g h i j"), u("k l m n o p q r s t")),
        ("pair_off_by_one", u("a b c d e f g h i j k"), u("k l m n o p q r s t")),
        ("pair_unicode", u("Café 我爱 👍"), b"bad\xff bytes \xed\xa0\x80"),
        ("pair_specials", u("[SEP] in a"), u("[CLS] in b [MASK]")),
    ]
    for name, a, b in pairs:
        for ml, pad in ((0, 0), (8, 1), (9, 0), (12, 1), (13, 1), (32, 1), (128, 1), (3, 1)):
            cases.append(("%s/m%d%s" % (name, ml, "" if pad else "np"), a, b, ml, pad))
    cases.append(("single_m2", u("hello world"), None, 2, 1))
    cases.append(("single_m3_nopad", u("hello world"), None, 3, 0))
    return cases


def write_cases(f, tok, cases):
    f.write(b"BERTC-TOKENIZER-CASES 1\n")
    for name, a, b, ml, pad in cases:
        # Always a batch (of one): a single call would take an empty text_pair "" for no pair,
        # unlike batches and the tokenizers backend, which give [CLS] a [SEP] [SEP] (as bertc).
        enc = hf_encode(tok, [dec(a)], None if b is None else [dec(b)], ml, bool(pad))
        enc = {k: v[0] for k, v in enc.items()}
        f.write(b"case %s %d %d %d\n" % (name.encode(), ml, pad, b is not None))
        f.write(b"text %d\n%s\n" % (len(a), a))
        if b is not None:
            f.write(b"pair %d\n%s\n" % (len(b), b))
        for key, field in (("input_ids", b"ids"), ("attention_mask", b"mask"), ("token_type_ids", b"types")):
            v = enc[key]
            f.write(b"%s %d%s\n" % (field, len(v), b"".join(b" %d" % x for x in v)))


def cmd_fixtures(args):
    tok = load_tokenizer(args.model)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "hard.cases"), "wb") as f:
        write_cases(f, tok, hard_cases())
    # A seeded sample of labelled reviews: each at max_length 128 and untruncated, and
    # consecutive ones as pairs at 128 (longest-first truncation on real text).
    # Mostly shorter reviews (under 1,000 bytes), to keep the fixture small, plus a few of any length.
    reviews = list(imdb_reviews(args.imdb))
    rnd = random.Random(1234)
    short_ones = [i for i, (_, t) in enumerate(reviews) if len(t) < 1000]
    pick = rnd.sample(short_ones, args.n - args.n_any)
    pick += rnd.sample([i for i in range(len(reviews)) if i not in set(pick)], args.n_any)
    pick.sort()
    cases = []
    for i in pick:
        name, text = reviews[i]
        short = name.replace("aclImdb/", "")
        cases.append((short, text, None, 128, 1))
        cases.append((short + "/full", text, None, 0, 0))
    for j in range(0, min(len(pick), 2 * args.n_pairs) - 1, 2):
        a, b = reviews[pick[j]][1], reviews[pick[j + 1]][1]
        cases.append(("pair%d" % (j // 2), a, b, 128, 1))
    with gzip.GzipFile(os.path.join(args.out, "imdb.cases.gz"), "wb", mtime=0) as f:
        write_cases(f, tok, cases)


def cmd_jsonl(args):
    tok = load_tokenizer(args.model)
    texts, pairs = [], []
    for line in sys.stdin:
        if not line.strip():
            continue
        rec = json.loads(line)
        texts.append(rec["text"])
        pairs.append(rec.get("text_pair"))
    out = sys.stdout
    # Single texts and pairs are batched separately; the output keeps the input order.
    singles = [i for i, p in enumerate(pairs) if p is None]
    doubles = [i for i, p in enumerate(pairs) if p is not None]
    result = [None] * len(texts)
    if singles:
        enc = hf_encode(tok, [texts[i] for i in singles], None, args.max_length, not args.no_pad)
        for k, i in enumerate(singles):
            result[i] = (enc["input_ids"][k], enc["attention_mask"][k], enc["token_type_ids"][k])
    if doubles:
        enc = hf_encode(tok, [texts[i] for i in doubles], [pairs[i] for i in doubles], args.max_length, not args.no_pad)
        for k, i in enumerate(doubles):
            result[i] = (enc["input_ids"][k], enc["attention_mask"][k], enc["token_type_ids"][k])
    for ids, mask, types in result:
        out.write(json_line(ids, mask, types))


def json_line(ids, mask, types):
    """The exact line `bertc tokenize` prints."""
    return '{"input_ids":[%s],"attention_mask":[%s],"token_type_ids":[%s]}\n' % (
        ",".join(map(str, ids)), ",".join(map(str, mask)), ",".join(map(str, types)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--model", required=True)
    f.add_argument("--imdb", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--n", type=int, default=300, help="reviews in the IMDB sample")
    f.add_argument("--n-any", type=int, default=20, help="of which of any length (the rest are < 1,000 bytes)")
    f.add_argument("--n-pairs", type=int, default=100)
    j = sub.add_parser("jsonl")
    j.add_argument("--model", required=True)
    j.add_argument("--max-length", type=int, default=128)
    j.add_argument("--no-pad", action="store_true")
    args = ap.parse_args()
    {"fixtures": cmd_fixtures, "jsonl": cmd_jsonl}[args.cmd](args)


if __name__ == "__main__":
    main()
