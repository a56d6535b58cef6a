#!/bin/sh
# Bad inputs of every kind bertc reads, and what the user sees: each case runs bertc on one bad file
# (or flag) and compares the exit status and the last line of stderr with the table in
# docs/RELIABILITY.md ("Bad inputs"), where the row starting "| ID |" gives them: the message in
# backticks (temporary paths written T/...), the status in the last column. So the table is checked,
# not claimed: change a message and the table must change with it.
#   sh tests/test_bad_inputs.sh [./bertc]            check every case against the table
#   sh tests/test_bad_inputs.sh ./bertc --table      print the rows as they are now (to update the table)
# Run from the repository root. No Python, no network: every bad file is made here with sh, printf,
# sed and tar, from the tiny fixture model.
BERTC=${1:-./bertc}
MODE=${2:-check}
DOC=docs/RELIABILITY.md
T=$(mktemp -d /tmp/bertc-bad-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
export LC_ALL=C
# Under `make test-asan`: let a failed huge allocation return NULL, as malloc does, instead of
# AddressSanitizer aborting (case c8 asks for 275 GB).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"

# try ID 'KIND' 'WHAT' CMD...: runs CMD (stdin from $IN, default /dev/null).
try() {
    id=$1 kind=$2 what=$3
    shift 3
    "$@" <"${IN:-/dev/null}" >"$T/out" 2>"$T/err"
    got=$?
    # The user's message: the last line of stderr, with the temporary folder written T.
    line=$(tail -n 1 "$T/err" | sed "s|$T|T|g")
    # Accepted: what the run says about the data it read, if anything (training prints "data: ...").
    if [ "$got" -eq 0 ]; then
        line=$(grep -m 1 '^data:' "$T/err")
        line="accepted${line:+; $line}"
    fi
    if [ "$MODE" = "--table" ]; then
        printf '| %s | %s | %s | `%s` | %s |\n' "$id" "$kind" "$what" "$line" "$got"
        return
    fi
    row=$(grep -F "| $id | " "$DOC" | head -n 1)
    if [ -z "$row" ]; then
        fail=$((fail + 1))
        echo "FAIL: $id: no row \"| $id | ...\" in $DOC"
        return
    fi
    want_msg=$(printf '%s\n' "$row" | sed 's/^[^`]*`//; s/`[^`]*$//')
    want_rc=$(printf '%s\n' "$row" | sed 's/.*| *\([0-9][0-9]*\) *|[[:space:]]*$/\1/')
    # A crash (signal) is never right: 128 + N.
    if [ "$got" -ge 128 ]; then
        fail=$((fail + 1))
        echo "FAIL: $id ($what): killed by signal $((got - 128)): $line"
    elif [ "$got" != "$want_rc" ] || [ "$line" != "$want_msg" ]; then
        fail=$((fail + 1))
        echo "FAIL: $id ($what)"
        echo "   got:  $got $line"
        echo "   want: $want_rc $want_msg"
    else
        pass=$((pass + 1))
    fi
}

# 8-byte little-endian length, as a safetensors file starts.
le64() {
    n=$1 i=0
    while [ $i -lt 8 ]; do
        printf "\\$(printf %03o $((n % 256)))"
        n=$((n / 256))
        i=$((i + 1))
    done
}
# st FILE 'HEADER' DATA_BYTES: a safetensors file with that header and that many zero bytes of data.
st() {
    { le64 ${#2}; printf '%s' "$2"; head -c "$3" /dev/zero; } >"$1"
}

# ---------------------------------------------------------------- the good things, spoiled one at a time
# M: the tiny random model with a vocabulary of its 100 ids; mk NAME copies it to T/NAME.
M=$T/m
mkdir -p "$M"
cp tests/fixtures/bert/tiny/config.json tests/fixtures/bert/tiny/model.safetensors "$M/"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n'; i=7; while [ $i -lt 100 ]; do echo "w$i"; i=$((i + 1)); done; } >"$M/vocab.txt"
mk() { rm -rf "$T/$1"; cp -r "$M" "$T/$1"; }
printf '{"text":"good w9"}\n' >"$T/in.jsonl"
i=0
while [ $i -lt 8 ]; do
    echo '{"text":"w9 w10 good","label":"yes"}'
    echo '{"text":"w12 bad w13","label":"no"}'
    i=$((i + 1))
done >"$T/train.jsonl"
printf 'text,label\nw9 good,yes\nw12 bad,no\n' >"$T/ok.csv"

# Opening a model: bertc predict reads the folder before any input.
predict() { IN="$T/in.jsonl" try "$1" "$2" "$3" "$BERTC" predict --model "$T/$1" --threads 1 --max-length 16; }
# Reading a dataset: bertc train reads (and checks) the training set first.
train_on() { try "$1" "$2" "$3" "$BERTC" train --model "$M" --train "$4" --out "$T/o_$1" --epochs 1 --max-length 16 \
    --threads 1 --quiet; }

# ---------------------------------------------------------------- model.safetensors
mk st1; printf 'abc' >"$T/st1/model.safetensors"
predict st1 model.safetensors "file shorter than the 8-byte header length"
mk st2; { le64 5000; printf '{}'; } >"$T/st2/model.safetensors"
predict st2 model.safetensors "header length past the end of the file"
mk st3; { le64 200000000; printf '{}'; } >"$T/st3/model.safetensors"
predict st3 model.safetensors "header length over 100 MB"
mk st4; st "$T/st4/model.safetensors" 'not json' 0
predict st4 model.safetensors "header is not JSON"
mk st5; st "$T/st5/model.safetensors" '[1, 2, 3]' 0
predict st5 model.safetensors "header is JSON but not an object"
mk st6; st "$T/st6/model.safetensors" '{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}' 1
predict st6 model.safetensors "unknown dtype"
mk st7; st "$T/st7/model.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 4
predict st7 model.safetensors "data offsets past the end of the file"
mk st8; st "$T/st8/model.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12
predict st8 model.safetensors "two tensors' bytes overlap"
mk st9; st "$T/st9/model.safetensors" '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8
predict st9 model.safetensors "offsets do not match dtype and shape"
mk st10; st "$T/st10/model.safetensors" '{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}' 0
predict st10 model.safetensors "shape whose element count overflows"
mk st11; st "$T/st11/model.safetensors" '{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}' 0
predict st11 model.safetensors "negative dimension"
mk st12; st "$T/st12/model.safetensors" '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8
predict st12 model.safetensors "the same tensor name twice"
mk st13; st "$T/st13/model.safetensors" "$(printf '{"\377":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}')" 4
predict st13 model.safetensors "header not UTF-8"
mk st14; sed 's/"bert.embeddings.word_embeddings.weight":{"dtype":"F32","shape":\[100,32\]/"bert.embeddings.word_embeddings.weight":{"dtype":"F32","shape":[32,100]/' \
    "$M/model.safetensors" >"$T/st14/model.safetensors"
predict st14 model.safetensors "a weight with the wrong shape (transposed)"
mk st15; sed 's/"bert.embeddings.LayerNorm.bias"/"bert.embeddings.LayerNorm.bia_"/' "$M/model.safetensors" >"$T/st15/model.safetensors"
predict st15 model.safetensors "a weight missing"
mk st16; sed 's/"bert.embeddings.LayerNorm.bias":{"dtype":"F32"/"bert.embeddings.LayerNorm.bias":{"dtype":"I32"/' "$M/model.safetensors" >"$T/st16/model.safetensors"
predict st16 model.safetensors "a weight stored as integers"
mk st17; rm "$T/st17/model.safetensors"
predict st17 model.safetensors "no model.safetensors"

# ---------------------------------------------------------------- config.json
mk c1; printf 'hidden_size: 32\n' >"$T/c1/config.json"
predict c1 config.json "not JSON"
mk c2; printf '[1]' >"$T/c2/config.json"
predict c2 config.json "JSON but not an object"
mk c3; printf '{}' >"$T/c3/config.json"
predict c3 config.json "every field missing (BERT-base defaults apply)"
mk c4; sed 's/"num_hidden_layers": 2/"num_hidden_layers": 0/' "$M/config.json" >"$T/c4/config.json"
predict c4 config.json "zero layers"
mk c5; sed 's/"hidden_size": 32/"hidden_size": -32/' "$M/config.json" >"$T/c5/config.json"
predict c5 config.json "negative hidden size"
mk c6; sed 's/"hidden_size": 32/"hidden_size": 30/' "$M/config.json" >"$T/c6/config.json"
predict c6 config.json "hidden size not divisible by the heads"
mk c7; sed 's/"hidden_size": 32/"hidden_size": 2000000000/; s/"num_attention_heads": 4/"num_attention_heads": 1/' "$M/config.json" >"$T/c7/config.json"
predict c7 config.json "absurd hidden size (2e9)"
mk c8; sed 's/"vocab_size": 100/"vocab_size": 2147483647/' "$M/config.json" >"$T/c8/config.json"
predict c8 config.json "absurd vocab_size (2^31-1)"
mk c9; sed 's/"hidden_act": "gelu"/"hidden_act": "swish"/' "$M/config.json" >"$T/c9/config.json"
predict c9 config.json "unknown activation"
mk c10; sed 's/"hidden_dropout_prob": 0.1/"hidden_dropout_prob": 1.5/' "$M/config.json" >"$T/c10/config.json"
predict c10 config.json "dropout probability 1.5"
mk c11; sed 's/"model_type": "bert"/"model_type": "bert", "num_labels": 2000000000/; /"id2label"/,/}/d; /"label2id"/,/}/d' "$M/config.json" >"$T/c11/config.json"
predict c11 config.json "num_labels 2e9"
mk c12; sed 's/"2": "LABEL_2"/"2": "LABEL_0"/' "$M/config.json" >"$T/c12/config.json"
predict c12 config.json "two labels with the same name"
mk c13; sed 's/"hidden_size": 32/"hidden_size": 32.5/' "$M/config.json" >"$T/c13/config.json"
predict c13 config.json "a size that is not an integer"
mk c14; sed 's/"model_type": "bert"/"model_type": "b\xe9rt"/' "$M/config.json" >"$T/c14/config.json"
predict c14 config.json "invalid UTF-8"
mk c15; rm "$T/c15/config.json"
predict c15 config.json "no config.json"

# ---------------------------------------------------------------- vocab.txt, tokenizer_config.json
mk v1; : >"$T/v1/vocab.txt"
predict v1 vocab.txt "empty"
mk v2; sed '/^\[CLS\]$/d' "$M/vocab.txt" >"$T/v2/vocab.txt"
predict v2 vocab.txt "no [CLS]"
mk v3; sed 's/^\[SEP\]$/SEP/' "$M/vocab.txt" >"$T/v3/vocab.txt"
predict v3 vocab.txt "no [SEP]"
mk v4; sed 's/^\[UNK\]$/UNK/' "$M/vocab.txt" >"$T/v4/vocab.txt"
predict v4 vocab.txt "no [UNK]"
mk v5; sed 's/^\[PAD\]$/PAD/' "$M/vocab.txt" >"$T/v5/vocab.txt"
predict v5 vocab.txt "no [PAD]"
mk v6; sed 's/^w50$/good/' "$M/vocab.txt" >"$T/v6/vocab.txt"
predict v6 vocab.txt "a token twice (the later line wins, as in Hugging Face)"
mk v7; sed 's/^w50$/w\xff\xfe/' "$M/vocab.txt" >"$T/v7/vocab.txt"
predict v7 vocab.txt "a token that is not UTF-8 (kept as bytes; never matches text)"
mk v8; { head -n 50 "$M/vocab.txt"; head -c 70000 /dev/zero | tr '\0' 'x'; echo; } >"$T/v8/vocab.txt"
predict v8 vocab.txt "a 70,000-byte line"
mk v9; { cat "$M/vocab.txt"; echo extra; } >"$T/v9/vocab.txt"
predict v9 vocab.txt "more tokens than config.json's vocab_size"
mk v10; rm "$T/v10/vocab.txt"
predict v10 vocab.txt "no vocab.txt"
mk v11; printf '{"do_lower_case": tru' >"$T/v11/tokenizer_config.json"
predict v11 tokenizer_config.json "not JSON"
mk v12; printf '{"do_lower_case": "yes"}' >"$T/v12/tokenizer_config.json"
predict v12 tokenizer_config.json "do_lower_case a string"
mk v13; printf '{"unk_token": "<unk>"}' >"$T/v13/tokenizer_config.json"
predict v13 tokenizer_config.json "a special token that is not in vocab.txt"

# ---------------------------------------------------------------- CSV / TSV
printf 'text,label\n"never closed,yes\nw9,no\n' >"$T/d1.csv"
train_on d1 CSV "unterminated quote" "$T/d1.csv"
printf 'text,label\nw9,yes\nw10,no,extra\n' >"$T/d2.csv"
train_on d2 CSV "wrong number of fields" "$T/d2.csv"
printf 'review,label\nw9,yes\n' >"$T/d3.csv"
train_on d3 CSV "no text column" "$T/d3.csv"
printf 'text\nw9\nw10\n' >"$T/d4.csv"
train_on d4 CSV "no label column (a training set needs labels)" "$T/d4.csv"
try d5 CSV "--label-column names a missing column" "$BERTC" train --model "$M" --train "$T/ok.csv" --label-column sentiment \
    --out "$T/o_d5" --epochs 1 --max-length 16 --threads 1 --quiet
printf 'text,label\nw9,maybe\n' >"$T/d6.csv"
try d6 CSV "validation label not among the training labels" "$BERTC" train --model "$M" --train "$T/ok.csv" --val "$T/d6.csv" \
    --out "$T/o_d6" --epochs 1 --max-length 16 --threads 1 --quiet
printf 'text,label\nw9,yes\n  ,no\n' >"$T/d7.csv"
train_on d7 CSV "empty text" "$T/d7.csv"
printf 'text,label\nw9 \000good,yes\nw12\000,no\n' >"$T/d8.csv"
train_on d8 CSV "NUL bytes in a text (dropped)" "$T/d8.csv"
printf 'text,label\nw9 \377\376 good,yes\nw12 \303,no\n' >"$T/d9.csv"
train_on d9 CSV "invalid UTF-8 in a text (read as U+FFFD)" "$T/d9.csv"
: >"$T/d10.csv"
train_on d10 CSV "empty file" "$T/d10.csv"
printf 'text,label\n' >"$T/d11.csv"
train_on d11 CSV "a header and no records" "$T/d11.csv"
printf 'text,label\nw9,yes\n"w10" x,no\n' >"$T/d12.csv"
train_on d12 CSV "text after a closing quote" "$T/d12.csv"
printf 'text\tlabel\nw9\tyes\nw10\t\n' >"$T/d13.tsv"
train_on d13 TSV "an empty label" "$T/d13.tsv"
printf 'text,label\nw9,yes\nw10,\nw11,no\n' >"$T/d14.csv"
try d14 CSV "an empty label, with --skip-bad (skipped, counted)" "$BERTC" train --model "$M" --train "$T/d14.csv" --skip-bad \
    --out "$T/o_d14" --epochs 1 --max-length 16 --threads 1 --quiet
printf 'some text\n' >"$T/d15.txt"
train_on d15 "data file" "unknown extension (.txt)" "$T/d15.txt"
train_on d16 "data file" "missing file" "$T/nope.csv"

# ---------------------------------------------------------------- JSON Lines
printf '{"text":"w9","label":"yes"}\n{"text":"w10", label:"no"}\n' >"$T/j1.jsonl"
train_on j1 JSONL "a line that is not JSON" "$T/j1.jsonl"
printf '{"text":"w9","label":"yes"}\n42\n' >"$T/j2.jsonl"
train_on j2 JSONL "a line that is JSON but not an object" "$T/j2.jsonl"
printf '{"text":"w9","label":["yes"]}\n' >"$T/j3.jsonl"
train_on j3 JSONL "label of the wrong type (array)" "$T/j3.jsonl"
printf '{"text":"w9","label":1e300}\n' >"$T/j4.jsonl"
train_on j4 JSONL "label 1e300 (not an exact integer)" "$T/j4.jsonl"
printf '{"text":17,"label":"yes"}\n' >"$T/j5.jsonl"
train_on j5 JSONL "text not a string" "$T/j5.jsonl"
printf '{"review":"w9","label":"yes"}\n' >"$T/j6.jsonl"
train_on j6 JSONL "no text field" "$T/j6.jsonl"
printf '[{"text":"w9","label":"yes"}]\n' >"$T/j7.json"
train_on j7 JSON "a JSON array instead of JSON Lines" "$T/j7.json"
printf '{"text":"w9","label":"yes"}\n{"text":"w10"}\n' >"$T/j8.jsonl"
train_on j8 JSONL "one record without a label" "$T/j8.jsonl"

# ---------------------------------------------------------------- archives (ARCHIVE:FOLDER)
cp tests/fixtures/data/notanarchive.tar.gz "$T/t1.tar.gz"
train_on t1 tar.gz "not an archive" "$T/t1.tar.gz:train"
cp tests/fixtures/data/truncated.tar.gz "$T/t2.tar.gz"
train_on t2 tar.gz "truncated" "$T/t2.tar.gz:corpus/train"
cp tests/fixtures/data/tree.tar.gz "$T/t3.tar.gz"
train_on t3 tar.gz "the folder is not in the archive" "$T/t3.tar.gz:aclImdb/train"
mkdir -p "$T/tt/train/pos" "$T/tt/train/neg"
echo "w9 good" >"$T/tt/train/pos/1.txt"; echo "w12 bad" >"$T/tt/train/neg/2.txt"; echo x >"$T/tt/evil.txt"
(cd "$T/tt" && tar czPf ../t4.tar.gz --transform 's|^evil.txt|train/../../evil.txt|;s|^train/pos/1.txt|train/pos/../../../etc/1.txt|' \
    train/pos/1.txt evil.txt)
train_on t4 tar.gz "only path-traversal member names (../../x: never read)" "$T/t4.tar.gz:train"
(cd "$T/tt" && ln -s ../pos/1.txt train/neg/3.txt && tar czf ../t5.tar.gz train)
train_on t5 tar.gz "a symbolic link member" "$T/t5.tar.gz:train"
train_on t6 tar.gz "no :FOLDER after the archive" "$T/t3.tar.gz"
cp tests/fixtures/fuzz/tar/member_size_8GiB_oom "$T/t7.tar"
train_on t7 tar "a member announcing 8 GiB, file truncated" "$T/t7.tar:train"
train_on t8 tar.gz "missing archive" "$T/nope.tar.gz:train"

# ---------------------------------------------------------------- split files (--load-split)
split_on() { try "$1" "split file" "$2" "$BERTC" train --model "$M" --train "$T/ok.csv" --load-split "$T/$1.jsonl" \
    --out "$T/o_$1" --epochs 1 --max-length 16 --threads 1 --quiet; }
printf 'not json\n' >"$T/s1.jsonl"
split_on s1 "not JSON"
printf '{"split":"train","id":"line:99","label":"yes"}\n' >"$T/s2.jsonl"
split_on s2 "an id that is not in the dataset"
printf '{"split":"train","id":"line:2","label":"yes"}\n{"split":"train","id":"line:2","label":"yes"}\n' >"$T/s3.jsonl"
split_on s3 "an id listed twice"
printf '{"split":"train","id":"line:2","label":"no"}\n' >"$T/s4.jsonl"
split_on s4 "a label that disagrees with the dataset"
printf '{"split":"val","id":"line:2","label":"yes"}\n' >"$T/s5.jsonl"
split_on s5 "no example for the training split"
printf '{"split":"train","id":2,"label":"yes"}\n' >"$T/s6.jsonl"
split_on s6 "id not a string"
try s7 "split file" "missing file" "$BERTC" train --model "$M" --train "$T/ok.csv" --load-split "$T/nope.jsonl" \
    --out "$T/o_s7" --epochs 1 --max-length 16 --threads 1 --quiet

# ---------------------------------------------------------------- recipes (--recipe)
recipe() { try "$1" recipe "$2" "$BERTC" train --recipe "$T/$1.conf" --model "$M" --train "$T/ok.csv" --out "$T/o_$1" \
    --epochs 1 --max-length 16 --threads 1 --quiet; }
printf 'learning-rate = 1e-3\n' >"$T/r1.conf"
recipe r1 "unknown setting"
printf 'lr = abc\n' >"$T/r2.conf"
recipe r2 "a value that is not a number"
printf 'recipe = other.conf\n' >"$T/r3.conf"
recipe r3 "a recipe including another"
printf 'lr = 1e-3\n = 5\n' >"$T/r4.conf"
recipe r4 "a value without a setting name"
printf 'lr = 1e-3\nepochs \000 2\n' >"$T/r5.conf"
recipe r5 "a NUL byte"
{ printf 'seed = '; head -c 5000 /dev/zero | tr '\0' '7'; echo; } >"$T/r6.conf"
recipe r6 "a 5,000-byte line"
printf 'batch-size = 0\n' >"$T/r7.conf"
recipe r7 "a value out of range"
try r8 recipe "missing file" "$BERTC" train --recipe "$T/nope.conf"

# ---------------------------------------------------------------- sweep files (bertc sweep, --dry-run: nothing is trained)
sweep() { try "$1" "sweep file" "$2" "$BERTC" sweep "$T/$1.sweep" --out "$T/o_$1" --dry-run --trials 2 ${3:+--objective "$3"}; }
printf 'lr = log(0, 1e-4)\n' >"$T/w1.sweep"
sweep w1 "a log range with a zero end"
printf 'lr = linear(1e-3)\n' >"$T/w2.sweep"
sweep w2 "a range with one end"
printf 'seed = 1\n' >"$T/w3.sweep"
sweep w3 "nothing to search"
{ printf 'lr = 1e-3, 2e-3\nseed = '; head -c 5000 /dev/zero | tr '\0' '7'; echo; } >"$T/w4.sweep"
sweep w4 "a 5,000-byte line"
printf 'lr = 1e-3, 2e-3\n' >"$T/w5.sweep"
sweep w5 "--objective with an unknown metric" "max f1"
printf 'lr = 1e-3, 2e-3\nepochs = "3\n' >"$T/w6.sweep"
sweep w6 "an unterminated quote"

# ---------------------------------------------------------------- the command line
cli() { id=$1 what=$2; shift 2; try "$id" "command line" "$what" "$BERTC" "$@"; }
cli a1 "--lr abc" train --model "$M" --train "$T/ok.csv" --out "$T/o" --lr abc
cli a2 "--batch-size 0" train --model "$M" --train "$T/ok.csv" --out "$T/o" --batch-size 0
cli a3 "--max-length 100000" train --model "$M" --train "$T/ok.csv" --out "$T/o" --max-length 100000
cli a4 "--max-length 64 (the model has 32 positions)" train --model "$M" --train "$T/ok.csv" --out "$T/o_a4" --max-length 64 --quiet
cli a5 "no --model" train --train "$T/ok.csv" --out "$T/o"
cli a6 "--epochs -1" train --model "$M" --train "$T/ok.csv" --out "$T/o" --epochs -1
cli a7 "--lr nan" train --model "$M" --train "$T/ok.csv" --out "$T/o" --lr nan
cli a8 "--seed -5" train --model "$M" --train "$T/ok.csv" --out "$T/o" --seed -5
cli a9 "unknown option" train --model "$M" --learning-rate 1
cli a10 "a positional argument" train "$M"
cli a11 "--lr with no value" train --model "$M" --lr
cli a12 "unknown command" frobnicate
cli a13 "--model is a file" train --model "$T/ok.csv" --train "$T/ok.csv" --out "$T/o"
: >"$T/afile"
cli a14 "--out is a file" train --model "$M" --train "$T/ok.csv" --out "$T/afile" --epochs 1 --max-length 16 --quiet
cli a15 "--scheduler bogus" train --model "$M" --train "$T/ok.csv" --out "$T/o" --scheduler bogus --max-length 16
IN="$T/in.jsonl" cli a20 "predict with the default --max-length 128 (the model has 32 positions)" predict --model "$M" --threads 1
cli a16 "eval without --data" eval --model "$M"
IN="$T/in.jsonl" cli a17 "tokenize --max-length 1" tokenize --model "$M" --max-length 1
printf '{"text": 5}\n' >"$T/bad_in.jsonl"
IN="$T/bad_in.jsonl" cli a18 "predict: a record whose text is not a string" predict --model "$M" --threads 1
printf 'not json\n' >"$T/bad_in2.jsonl"
IN="$T/bad_in2.jsonl" cli a19 "tokenize: a line that is not JSON" tokenize --model "$M"

[ "$MODE" = "--table" ] && exit 0
echo "bad inputs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
