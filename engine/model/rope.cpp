// RoPE tables. Float32 arithmetic in the same order as transformers' modeling_rope_utils, so
// positions in the hundreds give the same angles to the last bits that matter.
#include "engine/model/rope.h"

#include <algorithm>
#include <cmath>

namespace ghostline::engine::model {

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {

std::vector<float> default_inv_freq(double theta, int dim) {
  std::vector<float> inv(dim / 2);
  const float base = static_cast<float>(theta);
  for (int i = 0; i < dim / 2; ++i) {
    float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(base, e);
  }
  return inv;
}

}  // namespace

Rope::Rope(const RopeConfig& cfg, int dim, int max_position, Order order) : dim_(dim), order_(order) {
  inv_freq_ = default_inv_freq(cfg.theta, dim);
  const float factor = static_cast<float>(cfg.factor);
  if (cfg.type == "linear") {
    for (auto& f : inv_freq_) f /= factor;
  } else if (cfg.type == "llama3") {
    const float old_ctx = static_cast<float>(cfg.original_max_position);
    const float low_wavelen = old_ctx / static_cast<float>(cfg.low_freq_factor);
    const float high_wavelen = old_ctx / static_cast<float>(cfg.high_freq_factor);
    for (auto& f : inv_freq_) {
      float wavelen = static_cast<float>(2 * M_PI) / f;
      float scaled = wavelen > low_wavelen ? f / factor : f;
      float smooth = (old_ctx / wavelen - static_cast<float>(cfg.low_freq_factor)) /
                     static_cast<float>(cfg.high_freq_factor - cfg.low_freq_factor);
      float smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
      bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      f = medium ? smoothed : scaled;
    }
  } else if (cfg.type == "yarn") {
    const double orig = cfg.original_max_position > 0 ? cfg.original_max_position : max_position;
    double af = cfg.attention_factor;
    if (af < 0) {
      if (cfg.mscale != 0 && cfg.mscale_all_dim != 0)
        af = yarn_get_mscale(cfg.factor, cfg.mscale) / yarn_get_mscale(cfg.factor, cfg.mscale_all_dim);
      else
        af = yarn_get_mscale(cfg.factor, 1.0);
    }
    attention_factor_ = static_cast<float>(af);
    auto correction_dim = [&](double rotations) {
      return (dim * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(cfg.theta));
    };
    double low = correction_dim(cfg.beta_fast), high = correction_dim(cfg.beta_slow);
    if (cfg.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    const float base = static_cast<float>(cfg.theta);
    for (int i = 0; i < dim / 2; ++i) {
      float pos_freq = std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
      float extrapolation = 1.0f / pos_freq;
      float interpolation = 1.0f / (factor * pos_freq);
      float ramp = (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low);
      ramp = std::clamp(ramp, 0.0f, 1.0f);
      float extra_factor = 1.0f - ramp;
      inv_freq_[i] = interpolation * (1 - extra_factor) + extrapolation * extra_factor;
    }
  }
  // cos and sin of every position up to kTablePositions, computed once as apply() would.
  const int half = dim_ / 2, table = std::clamp(max_position, 0, kTablePositions);
  cos_sin_.resize(static_cast<size_t>(table) * dim_);
  for (int pos = 0; pos < table; ++pos) angles(pos, cos_sin_.data() + static_cast<size_t>(pos) * dim_, cos_sin_.data() + static_cast<size_t>(pos) * dim_ + half);
  table_positions_ = table;
}

void Rope::angles(int pos, float* cs, float* sn) const {
  for (int i = 0; i < dim_ / 2; ++i) {
    float angle = static_cast<float>(pos) * inv_freq_[i];
    cs[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * attention_factor_;
    sn[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * attention_factor_;
  }
}

void Rope::apply(float* x, int n_heads, int stride, int pos) const {
  const int half = dim_ / 2;
  float cs_buf[512], sn_buf[512];
  const float* cs = cs_buf;
  const float* sn = sn_buf;
  if (pos >= 0 && pos < table_positions_) {
    cs = cos_sin_.data() + static_cast<size_t>(pos) * dim_;
    sn = cs + half;
  } else {
    angles(pos, cs_buf, sn_buf);
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * stride;
    if (order_ == Order::Half) {
      for (int i = 0; i < half; ++i) {
        float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cs[i] - b * sn[i];
        v[2 * i + 1] = a * sn[i] + b * cs[i];
      }
    }
  }
}

}  // namespace ghostline::engine::model
