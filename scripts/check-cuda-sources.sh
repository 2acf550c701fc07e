#!/usr/bin/env bash
# Compiles the CUDA-only code without a GPU or a CUDA libtorch, so that a change to it is known to
# build before a GPU host (where device time is short) runs it. On a GPU host CMake's configure
# probes each of these parts and quietly leaves out one that does not compile (CUDA graphs, the
# fused kernels): a slip there costs the measurements that needed it.
#   - the C++ under `#if STAGED_LM_CUDA…` (native/cuda_graph.cc, runtime.cc, loss.cc, norm.cc,
#     optim.cc): g++ -fsyntax-only against a PyTorch wheel's headers — a CPU wheel ships the
#     c10/cuda and ATen/cuda headers too — and the CUDA toolkit's, with the four math-library
#     headers ATen's CUDA context includes stubbed where the toolkit lacks them (only handle and
#     status types are used from them there);
#   - native/kernels/*.cu: nvcc -c for the architectures the build uses (sm_80, sm_90).
# ALL=1 checks every native/*.cc the same way (minutes), for C++ changes outside the CUDA branches.
# Needs python3 with torch (PYTHON=...), g++ and, for the kernels, nvcc (CUDA_HOME or PATH).
# Prints one line per file and exits non-zero if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
torch_root=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) ||
  { echo "check-cuda-sources: $py has no torch (set PYTHON to a python with a PyTorch wheel)" >&2; exit 2; }
version=$("$py" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(v[0], v[1])')
read -r major minor <<<"$version"
cuda=${CUDA_HOME:-/usr/local/cuda}
[ -f "$cuda/include/cuda_runtime.h" ] || { echo "check-cuda-sources: no CUDA toolkit headers under $cuda (set CUDA_HOME)" >&2; exit 2; }
nvcc=$(command -v nvcc || echo "$cuda/bin/nvcc")
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
stub() { [ -f "$cuda/include/$1" ] || printf '#pragma once\n%s\n' "$2" >"$stubs/$1"; }
stub cusparse.h 'typedef struct cusparseContext* cusparseHandle_t; typedef int cusparseStatus_t;'
stub cublas_v2.h 'typedef struct cublasContext* cublasHandle_t; typedef int cublasStatus_t;'
stub cublasLt.h 'typedef struct cublasLtContext* cublasLtHandle_t;'
stub cusolver_common.h 'typedef int cusolverStatus_t;'
stub cusolverDn.h '#include <cusolver_common.h>
typedef struct cusolverDnContext* cusolverDnHandle_t;'
inc=(-I"$torch_root/include" -I"$torch_root/include/torch/csrc/api/include" -I"$cuda/include" -I"$stubs"
  -Inode_modules/node-addon-api -I"$(node -p 'process.execPath.replace(/bin\/node$/, "include/node")')" -I/usr/include/node -Inative)
# (the libtorch version comes from the wheel's torch/version.h, as in the real build; the GPU hosts'
# PyTorch may be a little older than the wheel checked against here)
defs=(-DSTAGED_LM_CUDA=1 -DSTAGED_LM_CUDA_GRAPHS=1 -DSTAGED_LM_CUDA_KERNELS=1 -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE
  -DNAPI_EXPERIMENTAL -DNAPI_VERSION=2147483647 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_CPP_EXCEPTIONS_ALL
  -DNODE_ADDON_API_DISABLE_DEPRECATED -DSTAGED_LM_LIBTORCH_SOURCE='"check"' -DSTAGED_LM_LIBTORCH_PREFIX='"check"'
  -DSTAGED_LM_BUILD_TYPE='"check"')
failed=0
files=(native/cuda_graph.cc native/runtime.cc native/loss.cc native/norm.cc native/optim.cc)
# ALL=1: every C++ file against these (newer) headers, for a change outside the CUDA branches
[ "${ALL:-0}" = 1 ] && mapfile -t files < <(ls native/*.cc)
for f in "${files[@]}"; do
  if out=$(g++ -std=c++17 -fsyntax-only "${defs[@]}" "${inc[@]}" "$f" 2>&1); then
    echo "ok      $f (torch $major.$minor headers, CUDA branches on)"
  else
    echo "FAILED  $f"
    echo "$out" | grep -E 'error' | head -10
    failed=1
  fi
done
if [ -x "$nvcc" ]; then
  for f in native/kernels/*.cu; do
    if out=$("$nvcc" -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -c "$f" -o "$stubs/k.o" 2>&1); then
      echo "ok      $f (nvcc, sm_80 + sm_90)"
    else
      echo "FAILED  $f"
      echo "$out" | grep -E 'error' | head -10
      failed=1
    fi
  done
else
  echo "skipped native/kernels/*.cu: no nvcc"
fi
exit $failed
