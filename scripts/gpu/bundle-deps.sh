#!/bin/sh
# Run HERE (the Debian build machine) before scripts/gpu-check.sh is sent to a GPU machine that
# cannot install anything: copies the headers and shared libraries bertc builds against that a
# CUDA/PyTorch image may lack (utf8proc, cJSON, cmocka, OpenBLAS with its Fortran runtime) into
# .gpu-deps/ (git-ignored, about 40 MB), to be named in the device call's `carry`. libarchive is
# not copied (its dependencies weigh more than the limit allows): where the GPU machine lacks it,
# gpu-check.sh links a stub, and only .tar.gz datasets are then unreadable there. Nor is oneDNN
# (libdnnl, 38 MB, only the CPU's --precision bf16 uses it): gpu-check.sh builds with DNNL=0
# where the GPU machine lacks it.
set -eu
cd "$(dirname "$0")/../.."
D=.gpu-deps
rm -rf "$D"
mkdir -p "$D/include/cjson" "$D/lib"
inc=/usr/include
multi=/usr/include/x86_64-linux-gnu
cp "$inc/archive.h" "$inc/archive_entry.h" "$inc/utf8proc.h" "$inc/cmocka.h" "$inc/cmocka_pbc.h" "$D/include/"
cp "$inc/cjson/cJSON.h" "$D/include/cjson/"
cp "$multi/cblas.h" "$multi/openblas_config.h" "$D/include/"
# Each library as a plain copy under its soname (links do not travel), and for -lX a one-line
# linker script libX.so that points to it.
copy_lib() { # soname linkname
    src=$(ldconfig -p | awk -v s="$1" '$1 == s { print $NF; exit }')
    [ -n "$src" ] || { echo "bundle-deps: $1 not found (sh scripts/install-deps.sh first)" >&2; exit 1; }
    cp -L "$src" "$D/lib/$1"
    [ -z "$2" ] || echo "INPUT($1)" > "$D/lib/$2"
}
copy_lib libutf8proc.so.2 libutf8proc.so
copy_lib libcjson.so.1 libcjson.so
copy_lib libcmocka.so.0 libcmocka.so
copy_lib libopenblas.so.0 libopenblas.so
copy_lib libgfortran.so.5 ""
copy_lib libquadmath.so.0 ""
du -sh "$D"
echo "now: run(command=\"bash scripts/gpu-check.sh\", carry=[\".gpu-deps\"], timeout_s=590)"
