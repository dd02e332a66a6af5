#!/usr/bin/env bash
# On the GPU machine, in one go: build the CUDA backend's checks and benchmark (tests/gpu/device,
# sm_90a), run the checks (test_gpu), run the benchmark (bench_cuda) on the real-shape configs in
# bench/cuda/, and leave logs and JSON in $OUT (default ./gpu-out):
#   gpu.txt  build.log  test_gpu.log  test_gpu.json  bench.log  bench_cuda.json  clocks.csv
#   [tokrefs.tar.gz] [sanitizer.log] [ncu.txt] [test_engine_gpu.log kv_cache.log kv_cache-*.json]
# Usage: tests/gpu/run_h200.sh [--commit SHA] [--no-tests] [--no-bench] [--bench-reps N] [--tokrefs] [--ncu]
#                              [--kv-cache] [--verify] [--configs "A B"]
#   --verify runs bench_cuda --verify (verification steps per kernel, old vs new few-token kernels;
#   no prefill numbers); --configs benchmarks only those configs of bench/cuda (names with or
#   without .json, comma- or space-separated; default: all three).
#   --kv-cache also builds the tokenizer and runtime (PCRE2 and utf8proc from the Debian packages
#   carried in .gpu-carry/debs: `apt-get download libpcre2-dev libutf8proc-dev` there), runs
#   test_engine_gpu (the Engine over CUDA) and bench_kv_cache on the CUDA backend: the embedded
#   model and DeepSeek-V2-Lite's shape.
#   TEST_GPU_ARGS="--ops" runs the op cases only (a quick check of kernel changes); TEST_TIMEOUT
#   (seconds, default 200) bounds test_gpu.
#   --ncu profiles one DeepSeek-V2-Lite decode step with Nsight Compute (ncu.txt).
#   --tokrefs also runs tools/make_tokenizer_refs.py (needs the tokenizer packages carried).
# The device tool runs it from the repository root; nothing here needs the network.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
commit=unknown tests=1 bench=1 reps=20 tokrefs=0 ncu=0 kvcache=0 verify=()
configs="dsv2-lite qwen3-30b-a3b deepseek-coder-6.7b"
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) commit=$2; shift ;;
    --no-tests) tests=0 ;;
    --no-bench) bench=0 ;;
    --bench-reps) reps=$2; shift ;;
    --tokrefs) tokrefs=1 ;;
    --ncu) ncu=1 ;;
    --kv-cache) kvcache=1 ;;
    --verify) verify=(--verify) ;;
    --configs) configs=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
t0=$(date +%s)
stamp() { echo "[run_h200 +$(( $(date +%s) - t0 ))s] $*"; }

if [ "$tokrefs" = 1 ]; then
  stamp "tokenizer references"
  PYTHONUNBUFFERED=1 python3 tools/make_tokenizer_refs.py --out "$OUT/tokrefs" && tar czf "$OUT/tokrefs.tar.gz" -C "$OUT/tokrefs" . && rm -rf "$OUT/tokrefs"
fi

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  nvcc --version | tail -2
  cmake --version | head -1
  echo "commit $commit"
} > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

# nlohmann-json: the system's, else the headers carried in .gpu-carry/include.
extra=()
[ -f /usr/include/nlohmann/json.hpp ] || extra+=("-DGHOSTLINE_EXTRA_INCLUDE=$PWD/.gpu-carry/include")
# cuBLAS: the toolkit's, else the one PyTorch's wheels bring.
if ! ls /usr/local/cuda/lib64/libcublas.so* >/dev/null 2>&1; then
  lib=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
  so=$(ls "$lib"/libcublas.so* 2>/dev/null | head -1)
  [ -n "$so" ] && extra+=("-DGHOSTLINE_CUBLAS_LIBRARY=$so;$(ls "$lib"/libcublasLt.so* | head -1)") && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
  inc=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "include"))' 2>/dev/null)
  [ -d "$inc" ] && extra+=("-DGHOSTLINE_EXTRA_INCLUDE=$PWD/.gpu-carry/include;$inc")
fi
if [ "$kvcache" = 1 ]; then
  rm -rf /tmp/gl-deps && mkdir -p /tmp/gl-deps
  for f in .gpu-carry/debs/*.deb; do dpkg -x "$f" /tmp/gl-deps; done
  extra+=("-DGHOSTLINE_DEPS_PREFIX=/tmp/gl-deps")
fi
stamp "configure + build"
export PATH=/usr/local/cuda/bin:$PATH
if ! { cmake -S tests/gpu/device -B build-gpu -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a "${extra[@]}" &&
       cmake --build build-gpu -j"$(nproc)"; } > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  stamp "build failed"
  exit 1
fi
stamp "built"

status=0
if [ "$tests" = 1 ]; then
  stamp "test_gpu"
  timeout ${TEST_TIMEOUT:-200} build-gpu/test_gpu ${TEST_GPU_ARGS:-} --json "$OUT/test_gpu.json" > "$OUT/test_gpu.log" 2>&1
  status=$?
  grep -E "FAIL|test_gpu" "$OUT/test_gpu.log" | head -80
  stamp "test_gpu exit $status"
  if grep -qiE "illegal|misaligned|unspecified launch" "$OUT/test_gpu.log"; then
    stamp "a kernel faulted: the op checks under compute-sanitizer"
    timeout 120 compute-sanitizer --tool memcheck --print-limit 5 build-gpu/test_gpu --ops > "$OUT/sanitizer.log" 2>&1
    grep -E "Invalid|at 0x|by thread|Address|ERROR SUMMARY" "$OUT/sanitizer.log" | head -30
  fi
fi
if [ "$bench" = 1 ]; then
  stamp "bench_cuda"
  # SM clock, power and load every 250 ms while the benchmark runs (small kernels and clocks).
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,utilization.gpu --format=csv -lms 250 > "$OUT/clocks.csv" 2>&1 &
  smi=$!
  cfg_paths=()
  for c in ${configs//,/ }; do cfg_paths+=("bench/cuda/${c%.json}.json"); done
  timeout ${BENCH_TIMEOUT:-250} build-gpu/bench_cuda --commit "$commit" --reps "$reps" --variants "${verify[@]}" \
    --out "$OUT/bench_cuda.json" "${cfg_paths[@]}" > "$OUT/bench.log" 2>&1
  echo "bench_cuda exit $?"
  kill "$smi" 2>/dev/null
  cat "$OUT/bench.log"
fi
if [ "$ncu" = 1 ]; then
  # One batch-1 decode step of DeepSeek-V2-Lite per kernel: duration, DRAM throughput, SM clock.
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  stamp "ncu ($NCU)"
  [ -n "$NCU" ] && timeout ${NCU_TIMEOUT:-150} "$NCU" --clock-control none --profile-from-start off \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__cycles_elapsed.avg.per_second,launch__grid_size,launch__registers_per_thread \
    --print-summary per-kernel build-gpu/bench_cuda --profile bench/cuda/dsv2-lite.json > "$OUT/ncu.txt" 2>&1
  grep -vE "^==PROF==|^ *$" "$OUT/ncu.txt" | tail -120
fi
if [ "$kvcache" = 1 ]; then
  stamp "test_engine_gpu"
  timeout 120 build-gpu/test_engine_gpu > "$OUT/test_engine_gpu.log" 2>&1
  e=$?
  grep -E "FAIL|test_engine_gpu" "$OUT/test_engine_gpu.log" | head -40
  stamp "test_engine_gpu exit $e"
  [ "$e" = 0 ] || status=1
  stamp "bench_kv_cache"
  for m in embedded dsv2-lite; do
    model=(--context 1536)  # the embedded model's context is 2,048 tokens: 1,536 + suffix + typing fit
    [ "$m" = dsv2-lite ] && model=(--model dummy:bench/cuda/dsv2-lite.json)
    timeout ${KV_TIMEOUT:-150} build-gpu/bench_kv_cache --device cuda --commit "$commit" "${model[@]}" --out "$OUT/kv_cache-$m.json" 2>&1 | tee -a "$OUT/kv_cache.log"
  done
fi
stamp "done"
exit $status
