// Whole-model checks of the CUDA backend:
// - every parity fixture (tests/fixtures/models) against transformers' logits at every position,
//   prefilled whole, token by token (CUDA graphs), in chunks beside another sequence, in a mixed
//   step of a prefill chunk and decode tokens, several sequences decoding together (padded
//   buckets), after copy_kv_block; greedy continuations identical for the first 16 tokens;
// - the embedded model against the CPU backend;
// - real shapes (2-layer DeepSeek-V2-Lite, Qwen3-30B-A3B, DeepSeek-Coder-6.7B) against the CPU
//   backend on the same random weights.
// Tolerances: the decode path computes in float32 from the same weights as the reference
// (2e-4); the prefill path rounds activations to bf16 for cuBLAS when the weights are bf16
// (position statistics, see check_positions), and stays float32 for float32 weights (2e-4).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/cuda/cuda_model.h"
#include "engine/model.h"
#include "engine/model/config.h"
#include "engine/model/cpu_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/weights.h"
#include "tests/gpu/gpu_check.h"

namespace ghostline::gpu_test {

using namespace ghostline::engine;

namespace {

constexpr double kTolDecode = 2e-4;
constexpr double kTolPrefillBf16 = 5e-2;
constexpr double kTolPrefillF32 = 2e-4;
constexpr int kBlock = 4;

struct Fixture {
  std::string name, dir;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<float>> logits;  // [prompt][pos * V + v]
  std::vector<std::pair<int, std::vector<int32_t>>> greedy;
  int V = 0;
};

bool load_fixture(const std::string& dir, Fixture& f, std::string& why) {
  f.dir = dir;
  f.name = std::filesystem::path(dir).filename().string();
  std::ifstream in(dir + "/reference.json");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    auto j = nlohmann::json::parse(ss.str());
    for (const auto& p : j.at("prompts")) f.prompts.push_back(p.get<std::vector<int32_t>>());
    for (const auto& g : j.at("greedy")) f.greedy.push_back({g.at("prompt").get<int>(), g.at("tokens").get<std::vector<int32_t>>()});
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  auto store = model::TensorStore::open_file(dir + "/reference.safetensors");
  if (!store) {
    why = store.error().message;
    return false;
  }
  for (size_t i = 0; i < f.prompts.size(); ++i) {
    const auto* t = (*store)->find("logits." + std::to_string(i));
    if (!t || t->dtype != model::DType::F32 || t->shape.size() != 2) {
      why = "bad logits." + std::to_string(i);
      return false;
    }
    f.V = static_cast<int>(t->shape[1]);
    std::vector<float> v(t->numel());
    std::memcpy(v.data(), t->data, t->nbytes);
    f.logits.push_back(std::move(v));
  }
  return true;
}

struct Blocks {
  std::vector<int32_t> free;
  Blocks(int n, uint64_t seed) {
    free.resize(n);
    std::iota(free.begin(), free.end(), 0);
    std::shuffle(free.begin(), free.end(), std::mt19937_64(seed));
  }
  std::vector<int32_t> take(int tokens) {
    const int n = (tokens + kBlock - 1) / kBlock;
    std::vector<int32_t> t(free.end() - n, free.end());
    free.resize(free.size() - n);
    return t;
  }
};

SequenceStep seq_step(int n_past, int n_new, const std::vector<int32_t>& table, bool all) {
  SequenceStep s;
  s.n_past = n_past;
  s.n_new = n_new;
  s.block_table = table;
  s.all_logits = all;
  return s;
}

// Relative errors of `rows` logit rows against reference positions first..first+rows-1.
std::vector<double> row_errors(const Fixture& f, size_t prompt, int first, const float* got, int rows) {
  std::vector<double> e;
  for (int r = 0; r < rows; ++r)
    e.push_back(rel_err(got + static_cast<int64_t>(r) * f.V, f.logits[prompt].data() + static_cast<int64_t>(first + r) * f.V, f.V));
  return e;
}
double worst_rows(const Fixture& f, size_t prompt, int first, const float* got, int rows) {
  double w = 0;
  for (double x : row_errors(f, prompt, first, got, rows)) w = std::max(w, std::isnan(x) ? INFINITY : x);
  return w;
}

// Positions checked through the prefill path of a bf16 model: its products round activations to
// bf16 (as transformers in bf16 does), so the few positions where that flips a near-tie expert
// route (the fixtures' min_route_log_gap goes down to 3e-4) differ far more than the rest. The
// check: the median position within 1e-2 and 90% of them within 5e-2; the worst is reported.
void check_positions(Report& rep, const std::string& name, std::vector<double> errs, bool lenient, double tol, const std::string& err) {
  if (!err.empty() || errs.empty()) {
    rep.check(name, INFINITY, tol, err);
    return;
  }
  double worst = 0;
  for (double x : errs) worst = std::max(worst, std::isnan(x) ? INFINITY : x);
  if (!lenient) {
    rep.check(name, worst, tol, "");
    return;
  }
  std::sort(errs.begin(), errs.end());
  const double median = errs[errs.size() / 2], p90 = errs[std::min(errs.size() - 1, errs.size() * 9 / 10)];
  char note[160];
  std::snprintf(note, sizeof note, "bf16 prefill: median %.2e, p90 %.2e, worst %.2e over %zu positions", median, p90, worst, errs.size());
  rep.check(name, std::max(median / 1e-2, p90 / 5e-2) * tol, tol, note);
}

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

void fixture_checks(Report& rep, const Fixture& f, uint64_t seed) {
  LoadOptions o;
  o.device = Device::Cuda;
  auto loaded = load_model(f.dir, o);
  if (!rep.expect(f.name + ": loads on CUDA", loaded.has_value(), loaded ? "" : loaded.error().message)) return;
  Model& m = **loaded;
  const bool bf16 = m.info().weight_dtype == "bf16";
  const double tol_prefill = bf16 ? kTolPrefillBf16 : kTolPrefillF32;
  int pool = 0;
  for (const auto& p : f.prompts) pool += static_cast<int>(p.size() + 40) / kBlock + 2;
  pool *= 4;
  if (!rep.expect(f.name + ": allocate_kv", m.allocate_kv(kBlock, pool).has_value())) return;
  const std::string tag = f.name + " (" + m.info().weight_dtype + "): ";
  auto step = [&](const StepBatch& b, std::vector<float>& out, std::string& err) {
    auto r = m.forward(b, out);
    if (!r) err = r.error().message;
    return r.has_value();
  };

  // Whole prompts, every position (the 333-token prompt takes the prefill path).
  {
    Blocks blocks(pool, seed);
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      StepBatch b;
      b.tokens = f.prompts[p];
      const int n = static_cast<int>(b.tokens.size());
      b.seqs.push_back(seq_step(0, n, blocks.take(n), true));
      std::vector<float> out;
      std::string err;
      const bool ok = step(b, out, err);
      const bool prefill_path = n > 64;
      check_positions(rep, tag + "prefill " + std::to_string(n) + " tokens (" + (prefill_path ? "prefill" : "decode") + " path)",
                      ok ? row_errors(f, p, 0, out.data(), n) : std::vector<double>{}, prefill_path && bf16,
                      prefill_path ? tol_prefill : kTolDecode, err);
    }
  }
  // Token by token (graph replays of the 1-token bucket).
  {
    Blocks blocks(pool, seed + 1);
    for (size_t p = 0; p < f.prompts.size(); ++p) {
      const int n = static_cast<int>(f.prompts[p].size());
      auto table = blocks.take(n);
      double worst = 0;
      std::string err;
      for (int i = 0; i < n && err.empty(); ++i) {
        StepBatch b;
        b.tokens = {f.prompts[p][i]};
        b.seqs.push_back(seq_step(i, 1, std::vector<int32_t>(table.begin(), table.begin() + (i + kBlock) / kBlock), false));
        std::vector<float> out;
        if (step(b, out, err)) worst = std::max(worst, worst_rows(f, p, i, out.data(), 1));
      }
      rep.check(tag + "decode token by token, " + std::to_string(n) + " positions", err.empty() ? worst : INFINITY, kTolDecode, err);
    }
  }
  // Chunked prefill of the long prompt beside the whole short one, chunks of 50 and 100: the
  // first step (short prompt + a chunk) and the 100-token chunks take the prefill path, the later
  // chunks of 64 tokens or fewer the decode path, with earlier positions in the cache.
  for (int chunk : {50, 100}) {
    Blocks blocks(pool, seed + chunk);
    const size_t lp = f.prompts.size() - 1;
    const auto& long_p = f.prompts[lp];
    const auto& short_p = f.prompts[1];
    auto t_long = blocks.take(static_cast<int>(long_p.size()));
    auto t_short = blocks.take(static_cast<int>(short_p.size()));
    std::vector<double> e_prefill, e_decode;
    std::string err;
    for (int done = 0; done < static_cast<int>(long_p.size()) && err.empty();) {
      const int n = std::min(chunk, static_cast<int>(long_p.size()) - done);
      StepBatch b;
      if (done == 0) {
        b.tokens = short_p;
        b.seqs.push_back(seq_step(0, static_cast<int>(short_p.size()), t_short, false));
      }
      b.tokens.insert(b.tokens.end(), long_p.begin() + done, long_p.begin() + done + n);
      b.seqs.push_back(seq_step(done, n, t_long, true));
      auto& sink = b.tokens.size() > 64 ? e_prefill : e_decode;
      std::vector<float> out;
      if (step(b, out, err)) {
        const float* rows = out.data();
        if (done == 0) {
          auto e = row_errors(f, 1, static_cast<int>(short_p.size()) - 1, rows, 1);
          sink.insert(sink.end(), e.begin(), e.end());
          rows += f.V;
        }
        auto e = row_errors(f, lp, done, rows, n);
        sink.insert(sink.end(), e.begin(), e.end());
      }
      done += n;
    }
    const std::string name = tag + "chunks of " + std::to_string(chunk) + " beside the short prompt: ";
    // The decode-path chunks attend to keys the prefill-path step computed: the same tolerance.
    check_positions(rep, name + "prefill-path steps", e_prefill, bf16, tol_prefill, err);
    if (!e_decode.empty() || !err.empty()) check_positions(rep, name + "later decode-path steps", e_decode, bf16, tol_prefill, err);
  }
  // A prefill-path step mixing an 80-token chunk with two sequences' last tokens.
  {
    Blocks blocks(pool, seed + 7);
    const size_t lp = f.prompts.size() - 1;
    const auto &A = f.prompts[lp], &B = f.prompts[0], &C = f.prompts[1];
    auto ta = blocks.take(static_cast<int>(A.size())), tb = blocks.take(static_cast<int>(B.size())),
         tc = blocks.take(static_cast<int>(C.size()));
    std::string err;
    std::vector<float> out;
    StepBatch b1;  // A's first 100 tokens, B and C but their last token
    b1.tokens.insert(b1.tokens.end(), A.begin(), A.begin() + 100);
    b1.seqs.push_back(seq_step(0, 100, ta, false));
    b1.tokens.insert(b1.tokens.end(), B.begin(), B.end() - 1);
    b1.seqs.push_back(seq_step(0, static_cast<int>(B.size()) - 1, tb, false));
    b1.tokens.insert(b1.tokens.end(), C.begin(), C.end() - 1);
    b1.seqs.push_back(seq_step(0, static_cast<int>(C.size()) - 1, tc, false));
    std::vector<double> ea, ebc;
    if (step(b1, out, err)) {
      StepBatch b2;
      b2.tokens.insert(b2.tokens.end(), A.begin() + 100, A.begin() + 180);
      b2.seqs.push_back(seq_step(100, 80, ta, true));
      b2.tokens.push_back(B.back());
      b2.seqs.push_back(seq_step(static_cast<int>(B.size()) - 1, 1, tb, false));
      b2.tokens.push_back(C.back());
      b2.seqs.push_back(seq_step(static_cast<int>(C.size()) - 1, 1, tc, false));
      if (step(b2, out, err)) {
        ea = row_errors(f, lp, 100, out.data(), 80);
        ebc = row_errors(f, 0, static_cast<int>(B.size()) - 1, out.data() + 80 * f.V, 1);
        auto c2 = row_errors(f, 1, static_cast<int>(C.size()) - 1, out.data() + 81 * f.V, 1);
        ebc.insert(ebc.end(), c2.begin(), c2.end());
      }
    }
    check_positions(rep, tag + "mixed step: 80-token chunk (cuBLAS attention)", ea, bf16, tol_prefill, err);
    check_positions(rep, tag + "mixed step: decode tokens beside it", ebc, false, tol_prefill, err);
  }
  // Verification-sized steps: the long prompt in steps of 2, 3, ..., 8 tokens of one sequence,
  // every row of logits (the tensor-core skinny products, one sequence's tokens in one attention
  // block, padded buckets of 4 and 8; CUDA graphs).
  {
    Blocks blocks(pool, seed + 5);
    const size_t lp = f.prompts.size() - 1;
    const auto& P = f.prompts[lp];
    auto table = blocks.take(static_cast<int>(P.size()));
    double worst = 0;
    std::string err;
    int k = 2;
    for (int done = 0; done < static_cast<int>(P.size()) && err.empty(); k = k == 8 ? 2 : k + 1) {
      const int n = std::min(k, static_cast<int>(P.size()) - done);
      StepBatch b;
      b.tokens.assign(P.begin() + done, P.begin() + done + n);
      b.seqs.push_back(seq_step(done, n, table, true));
      std::vector<float> out;
      if (step(b, out, err)) worst = std::max(worst, worst_rows(f, lp, done, out.data(), n));
      done += n;
    }
    rep.check(tag + "one sequence in steps of 2..8 tokens (verification)", err.empty() ? worst : INFINITY, kTolDecode, err);
  }
  // Three sequences decoding together, one token each per step (bucket of 4, one padding token).
  {
    Blocks blocks(pool, seed + 9);
    std::vector<std::vector<int32_t>> tables;
    for (const auto& p : f.prompts) tables.push_back(blocks.take(static_cast<int>(p.size())));
    const int steps = static_cast<int>(f.prompts[1].size());
    double worst = 0;
    std::string err;
    for (int i = 0; i < steps && err.empty(); ++i) {
      StepBatch b;
      std::vector<size_t> who;
      for (size_t p = 0; p < f.prompts.size(); ++p) {
        if (i >= static_cast<int>(f.prompts[p].size())) continue;
        b.tokens.push_back(f.prompts[p][i]);
        b.seqs.push_back(seq_step(i, 1, std::vector<int32_t>(tables[p].begin(), tables[p].begin() + (i + kBlock) / kBlock), false));
        who.push_back(p);
      }
      std::vector<float> out;
      if (step(b, out, err))
        for (size_t k = 0; k < who.size(); ++k) worst = std::max(worst, worst_rows(f, who[k], i, out.data() + k * f.V, 1));
    }
    rep.check(tag + "sequences decoding together (padded bucket)", err.empty() ? worst : INFINITY, kTolDecode, err);
  }
  // copy_kv_block: the copy of a prefilled sequence's blocks gives the same next logits.
  {
    Blocks blocks(pool, seed + 11);
    const auto& P1 = f.prompts[1];
    const int n = static_cast<int>(P1.size());
    auto t1 = blocks.take(n), t2 = blocks.take(n);
    std::string err;
    std::vector<float> out, a, c;
    StepBatch b;
    b.tokens.assign(P1.begin(), P1.end() - 1);
    b.seqs.push_back(seq_step(0, n - 1, t1, false));
    bool ok = step(b, out, err);
    for (int k = 0; k < (n - 1 + kBlock - 1) / kBlock; ++k) m.copy_kv_block(t1[k], t2[k]);
    StepBatch last;
    last.tokens = {P1.back()};
    last.seqs.push_back(seq_step(n - 1, 1, t1, false));
    ok = ok && step(last, a, err);
    last.seqs[0].block_table = t2;
    ok = ok && step(last, c, err);
    rep.check(tag + "copy_kv_block: same logits from the copied blocks", ok ? rel_err(c, a) : INFINITY, 0.0, err);
  }
  // Greedy continuations: the first 16 tokens identical to transformers'.
  {
    Blocks blocks(pool, seed + 13);
    for (const auto& [pi, want] : f.greedy) {
      const auto& prompt = f.prompts[pi];
      const int n_gen = std::min<int>(16, static_cast<int>(want.size()));
      auto table = blocks.take(static_cast<int>(prompt.size()) + n_gen + 1);
      std::vector<int32_t> got;
      std::string err;
      StepBatch b;
      b.tokens = prompt;
      b.seqs.push_back(seq_step(0, static_cast<int>(prompt.size()), table, false));
      std::vector<float> out;
      int past = static_cast<int>(prompt.size());
      while (static_cast<int>(got.size()) < n_gen && step(b, out, err)) {
        got.push_back(argmax(out.data(), f.V));
        b.tokens = {got.back()};
        b.seqs[0] = seq_step(past, 1, table, false);
        ++past;
      }
      int same = 0;
      while (same < static_cast<int>(got.size()) && got[same] == want[same]) ++same;
      rep.check(tag + "greedy from prompt " + std::to_string(pi) + ": first " + std::to_string(n_gen) + " tokens identical",
                same >= n_gen ? 0.0 : 1.0, 0.0, err.empty() ? std::to_string(same) + " match" : err);
    }
  }
  const auto st = cuda::cuda_model_stats(m);
  rep.expect(tag + "CUDA graphs captured and replayed", st.graph_error.empty() && st.graph_replays > 0,
             "captures " + std::to_string(st.graph_captures) + ", replays " + std::to_string(st.graph_replays) +
                 (st.graph_error.empty() ? "" : ", error: " + st.graph_error));
}

// GPU against CPU on the same model: prompt logits (decode path, then the prefill path), then
// greedy decoding.
void against_cpu(Report& rep, const std::string& name, Model& gpu, Model& cpu, const std::vector<int32_t>& prompt, int n_decode,
                 double tol_prefill_path) {
  const int V = gpu.info().vocab_size, n = static_cast<int>(prompt.size());
  const int blocks = (n + n_decode + kBlock) / kBlock + 1;
  if (!gpu.allocate_kv(kBlock, 3 * blocks) || !cpu.allocate_kv(kBlock, 3 * blocks)) {
    rep.expect(name + ": allocate_kv", false);
    return;
  }
  std::vector<int32_t> t1(blocks), t2(blocks);
  std::iota(t1.begin(), t1.end(), 0);
  std::iota(t2.begin(), t2.end(), blocks);
  std::reverse(t2.begin(), t2.end());
  StepBatch b;
  b.tokens = prompt;
  b.seqs.push_back(seq_step(0, n, t1, true));
  std::vector<float> g, c, g2;
  std::string err;
  if (auto r = cpu.forward(b, c); !r) err = "cpu: " + r.error().message;
  if (auto r = gpu.forward(b, g); !r) err = "gpu: " + r.error().message;
  rep.check(name + ": prompt of " + std::to_string(n) + ", every position (GPU " + (n <= 64 ? "decode" : "prefill") + " path vs CPU)",
            err.empty() ? rel_err(g, c) : INFINITY, n <= 64 ? kTolDecode : tol_prefill_path, err);
  // The same prompt through the prefill path (cuBLAS), other blocks.
  cuda::set_cuda_model_options(gpu, {true, 0});
  b.seqs[0].block_table = t2;
  if (auto r = gpu.forward(b, g2); !r) err = "gpu prefill path: " + r.error().message;
  cuda::set_cuda_model_options(gpu, {true, 64});
  // bf16 prefill on random weights: route flips at a few positions, as for the fixtures.
  std::vector<double> pos_err;
  for (int r = 0; err.empty() && r < n; ++r) pos_err.push_back(rel_err(g2.data() + static_cast<int64_t>(r) * V, c.data() + static_cast<int64_t>(r) * V, V));
  check_positions(rep, name + ": the same prompt through the prefill path vs CPU", pos_err, gpu.info().weight_dtype == "bf16",
                  tol_prefill_path, err);
  // The same prompt in verification-sized steps of 2..8 tokens (decode path), other blocks.
  {
    std::vector<int32_t> t3(blocks);
    std::iota(t3.begin(), t3.end(), 2 * blocks);
    double worst_v = 0;
    int k = 2;
    for (int done = 0; done < n && err.empty(); k = k == 8 ? 2 : k + 1) {
      const int cnt = std::min(k, n - done);
      StepBatch v;
      v.tokens.assign(prompt.begin() + done, prompt.begin() + done + cnt);
      v.seqs.push_back(seq_step(done, cnt, t3, true));
      std::vector<float> gv;
      if (auto r = gpu.forward(v, gv); !r) {
        err = "gpu verification steps: " + r.error().message;
        break;
      }
      worst_v = std::max(worst_v, rel_err(gv.data(), c.data() + static_cast<int64_t>(done) * V, static_cast<int64_t>(cnt) * V));
      done += cnt;
    }
    rep.check(name + ": the prompt in steps of 2..8 tokens (verification) vs CPU", err.empty() ? worst_v : INFINITY, kTolDecode, err);
  }
  // Greedy decoding from the prompt, comparing logits and tokens at every step.
  double worst = 0;
  int same = 0, past = n;
  bool diverged = false;
  std::vector<float> lg(c.end() - V, c.end()), lc = lg;
  int32_t tok = argmax(lc.data(), V);
  for (int i = 0; i < n_decode && err.empty(); ++i) {
    StepBatch d;
    d.tokens = {tok};
    d.seqs.push_back(seq_step(past++, 1, t1, false));
    if (auto r = cpu.forward(d, lc); !r) err = "cpu: " + r.error().message;
    if (auto r = gpu.forward(d, lg); !r) err = "gpu: " + r.error().message;
    if (!err.empty()) break;
    worst = std::max(worst, rel_err(lg, lc));
    const int tg = argmax(lg.data(), V), tc = argmax(lc.data(), V);
    if (!diverged && tg == tc) ++same;
    else diverged = true;
    tok = tc;
  }
  rep.check(name + ": " + std::to_string(n_decode) + " decode steps, logits vs CPU", err.empty() ? worst : INFINITY, kTolDecode, err);
  rep.check(name + ": greedy tokens identical to CPU", same == n_decode ? 0.0 : 1.0, 0.0, std::to_string(same) + " match");
}

// A real model shape at 2 layers, small vocabulary: the same random weights on both backends.
void real_shape_checks(Report& rep, const std::string& label, const std::string& config_json, uint64_t seed) {
  auto cfg = model::parse_config(config_json, label);
  if (!rep.expect(label + ": config", cfg.has_value(), cfg ? "" : cfg.error().message)) return;
  model::WeightStorage storage;
  auto w = model::dummy_weights(*cfg, seed, storage);
  if (!rep.expect(label + ": dummy weights", w.has_value(), w ? "" : w.error().message)) return;
  // Dummy kv_b_proj is drawn in float32 while the GPU keeps bf16 like the other matrices (real
  // checkpoints store it in bf16): give both backends the bf16 values.
  for (auto& layer : w->layers)
    for (auto& x : layer.attn.kv_b) x = from_bf16(to_bf16(x));
  LoadOptions o;
  o.device = Device::Cuda;
  auto gpu = cuda::create_cuda_model(*cfg, &*w, *w, o);
  if (!rep.expect(label + ": CUDA model", gpu.has_value(), gpu ? "" : gpu.error().message)) return;
  model::CpuModel cpu(*cfg, std::move(storage), std::move(*w), 0);
  Rng rng(seed);
  std::vector<int32_t> prompt(40);
  for (auto& t : prompt) t = rng.uniform_int(0, cfg->vocab_size - 1);
  against_cpu(rep, label, **gpu, cpu, prompt, 6, cfg->weight_dtype == "float32" ? kTolPrefillF32 : kTolPrefillBf16);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void run_model_checks(Report& rep, const std::string& source_dir, uint64_t seed) {
  const std::string fixtures = source_dir + "/tests/fixtures/models";
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fixtures, ec))
    if (std::filesystem::exists(e.path() / "reference.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  rep.expect("fixtures found", dirs.size() >= 8, std::to_string(dirs.size()) + " in " + fixtures);
  for (const auto& d : dirs) {
    Fixture f;
    std::string why;
    if (!rep.expect(std::filesystem::path(d).filename().string() + ": fixture reads", load_fixture(d, f, why), why)) continue;
    fixture_checks(rep, f, seed);
  }

  // The embedded model against the CPU backend.
  {
    const std::string dir = source_dir + "/models/ghostline-coder-tiny";
    LoadOptions og, oc;
    og.device = Device::Cuda;
    auto gpu = load_model(dir, og);
    auto cpu = load_model(dir, oc);
    if (rep.expect("ghostline-coder-tiny: loads on both backends", gpu.has_value() && cpu.has_value(),
                   !gpu ? gpu.error().message : !cpu ? cpu.error().message : "")) {
      Rng rng(seed + 5);
      std::vector<int32_t> prompt(60);
      for (auto& t : prompt) t = rng.uniform_int(3, (*gpu)->info().vocab_size - 1);
      against_cpu(rep, "ghostline-coder-tiny", **gpu, **cpu, prompt, 16, kTolPrefillBf16);
    }
  }

  // Real shapes, 2 layers each (layer 0 dense where the model has one), in float32 weights so
  // that both paths are held to float32 tolerances: with bf16 activations the random routers
  // of these dummy models flip so many near-tie routes (Qwen3 shape: 10% of the positions off by
  // more than 0.1 on 2026-11-29) that no tolerance would both pass and mean something. The bf16
  // paths are checked on the bf16 fixtures and the embedded model above.
  auto real = [&](const char* label, const char* file, uint64_t s) {
    auto j = nlohmann::json::parse(slurp(source_dir + "/bench/cuda/" + file));
    j["num_hidden_layers"] = 2;
    j["vocab_size"] = 4096;
    j["torch_dtype"] = "float32";
    real_shape_checks(rep, label, j.dump(), s);
  };
  real("DeepSeek-V2-Lite shape, 2 layers, f32", "dsv2-lite.json", seed + 21);
  real("Qwen3-30B-A3B shape, 2 layers, f32", "qwen3-30b-a3b.json", seed + 22);
  real("DeepSeek-Coder-6.7B shape, 2 layers, f32", "deepseek-coder-6.7b.json", seed + 23);
}

}  // namespace ghostline::gpu_test
