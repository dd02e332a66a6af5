# The kernels' sources (relative to kernels/): one list for this folder's library and for the GPU
# machine's own build (tests/gpu/device).
set(GHOSTLINE_KERNEL_SOURCES
  rows.cu
  skinny.cu
  skinny_mma.cu
  moe_stream.cu
  rope.cu
  attention.cu
  moe.cu
  mla_decode.cu
  decode_fused.cu
  prefill_attention.cu
  grouped_gemm.cu
  grouped_gemm_sm90.cu
  sample.cu
  blas.cpp
)
