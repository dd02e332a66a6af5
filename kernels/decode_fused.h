// Decode-step fusions (decode_fused.cu): fewer launches per layer for a few tokens.
#pragma once

#include "kernels/kernels.h"

namespace ghostline::kernels {

// For each row t < T: h[t] = rmsnorm(x[t] + delta[t]) * w (as residual_rmsnorm computes it) and
// logits[t, e] = router[e] · h[t] for e < E (router [E, D] float32), in one launch. x is NOT
// written: the caller adds delta into x later (residual_rmsnorm with delta and the MoE sum).
// Several blocks per row each normalise the row and take some router rows (read before the
// wait on the kernel before). D <= 8192, D % 4 == 0, x, delta, router 16-byte aligned.
void rmsnorm_router(const float* x, const float* delta, const float* w, float eps, float* h, int T, int D, const float* router, int E,
                    float* logits, cudaStream_t s);
// Whether rmsnorm_router takes these sizes and pointers.
bool rmsnorm_router_fits(const float* x, const float* delta, int D, const float* router);

}  // namespace ghostline::kernels
