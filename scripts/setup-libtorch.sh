#!/usr/bin/env bash
# Installs a lean CPU libtorch 2.4.1 (what tch 0.17 / rust-bert 0.23 need) into .local/libtorch
# from PyPI wheels — no other download source is reachable here. Idempotent.
#
# Why wheels: Debian only has libtorch 1.13, and PyPI's Linux torch==2.4.1 is the CUDA build
# (~2.8 GB installed with its nvidia-* dependencies). We fetch three wheels with
# `pip download --no-deps` (~815 MB), check their sha256, and keep ~530 MB:
#   torch/include, torch/lib/{libtorch_cpu.so,libc10.so,libgomp-a34b3233.so.1}
#   nvidia/cuda_runtime/lib/libcudart.so.12, nvidia/cuda_cupti/lib/libcupti.so.12
# at the relative places libtorch_cpu.so's RPATH expects ($ORIGIN/../../nvidia/*/lib), plus
#   libtorch.so -> libtorch_cpu.so   (torch-sys links torch_cuda only if libtorch_cuda.so exists)
#   libgomp.so  -> libgomp-a34b3233.so.1 (so the binaries link the same OpenMP runtime as libtorch)
# The wheel uses the old C++ ABI: .cargo/config.toml sets LIBTORCH_CXX11_ABI=0.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.local/libtorch
WHEELS=.local/wheels
PYTHON=${POSTILLA_PYTHON:-python3}
TORCH_WHEEL=torch-2.4.1-cp311-cp311-manylinux1_x86_64.whl
TORCH_SHA=0b5f88afdfa05a335d80351e3cea57d38e578c8689f751d35e0ff36bce872113
CUDART_WHEEL=nvidia_cuda_runtime_cu12-12.1.105-py3-none-manylinux1_x86_64.whl
CUDART_SHA=6e258468ddf5796e25f1dc591a31029fa317d97a0a94ed93468fc86301d61e40
CUPTI_WHEEL=nvidia_cuda_cupti_cu12-12.1.105-py3-none-manylinux1_x86_64.whl
CUPTI_SHA=e54fde3983165c624cb79254ae9818a456eb6e87a7fd4d56a2352c24ee542d7e

if [ -f "$DEST/.complete" ] && [ "$(cat "$DEST/.complete")" = "$TORCH_SHA" ]; then
    echo "libtorch: $DEST is complete"
    exit 0
fi

have() { [ -f "$WHEELS/$1" ] && echo "$2  $WHEELS/$1" | sha256sum -c --status; }

mkdir -p "$WHEELS"
if ! have "$TORCH_WHEEL" "$TORCH_SHA" || ! have "$CUDART_WHEEL" "$CUDART_SHA" || ! have "$CUPTI_WHEEL" "$CUPTI_SHA"; then
    echo "libtorch: downloading torch 2.4.1 + CUDA runtime stubs from PyPI (~815 MB)"
    # Pinned platform and Python tags: the same files whatever the local interpreter is.
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux1_x86_64 -d "$WHEELS" \
        torch==2.4.1 nvidia-cuda-runtime-cu12==12.1.105 nvidia-cuda-cupti-cu12==12.1.105
fi
for pair in "$TORCH_WHEEL:$TORCH_SHA" "$CUDART_WHEEL:$CUDART_SHA" "$CUPTI_WHEEL:$CUPTI_SHA"; do
    if ! have "${pair%%:*}" "${pair##*:}"; then
        echo "libtorch: sha256 mismatch for $WHEELS/${pair%%:*} (expected ${pair##*:})" >&2
        exit 1
    fi
done

echo "libtorch: unpacking into $DEST"
STAGE="$DEST.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE"
"$PYTHON" - "$STAGE" "$WHEELS/$TORCH_WHEEL" "$WHEELS/$CUDART_WHEEL" "$WHEELS/$CUPTI_WHEEL" <<'PY'
import sys, zipfile
stage, torch, cudart, cupti = sys.argv[1:]
keep_torch = ("torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/lib/libgomp-a34b3233.so.1")
with zipfile.ZipFile(torch) as z:
    for m in z.namelist():
        if m.startswith("torch/include/") or m in keep_torch:
            z.extract(m, stage)
for wheel, lib in ((cudart, "nvidia/cuda_runtime/lib/libcudart.so.12"), (cupti, "nvidia/cuda_cupti/lib/libcupti.so.12")):
    with zipfile.ZipFile(wheel) as z:
        z.extract(lib, stage)
PY
ln -sf libtorch_cpu.so "$STAGE/torch/lib/libtorch.so"
ln -sf libgomp-a34b3233.so.1 "$STAGE/torch/lib/libgomp.so"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "$TORCH_SHA" > "$DEST/.complete"
du -sh "$DEST"
