// Rotary position embedding: inverse frequencies for the rope types (default, linear, llama3,
// yarn) computed as transformers computes them (float32), and the two pair orders:
//   Half        (llama, qwen, mixtral): pairs (i, i + dim/2), "rotate_half"
//   Interleaved (deepseek_v2 in transformers 5): pairs (2i, 2i + 1), complex multiplication.
// The yarn attention factor scales cos and sin, as the reference does.
#pragma once

#include <vector>

#include "engine/model/config.h"

namespace ghostline::engine::model {

class Rope {
 public:
  enum class Order { Half, Interleaved };
  Rope() = default;
  // dim: rotated dimensions per head; max_position: positions covered by the config.
  Rope(const RopeConfig& cfg, int dim, int max_position, Order order);

  int dim() const { return dim_; }
  float attention_factor() const { return attention_factor_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

  // Rotates n_heads vectors of `stride` floats each (the first dim() of each are rotated) at `pos`.
  void apply(float* x, int n_heads, int stride, int pos) const;

 private:
  // Positions whose cos and sin are kept in a table (a step rotates every token's query and key;
  // sin and cos in double precision each time were 0.5-0.7% of a step's perf samples).
  static constexpr int kTablePositions = 8192;
  void angles(int pos, float* cs, float* sn) const;

  int dim_ = 0;
  int table_positions_ = 0;
  std::vector<float> cos_sin_;  // [table_positions_][cos dim/2 | sin dim/2]
  Order order_ = Order::Half;
  float attention_factor_ = 1.0f;
  std::vector<float> inv_freq_;
};

// DeepSeek's yarn_get_mscale: 0.1 * mscale * ln(scale) + 1 for scale > 1, else 1.
double yarn_get_mscale(double scale, double mscale);

}  // namespace ghostline::engine::model
