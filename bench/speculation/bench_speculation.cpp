// bench_speculation: speculative decoding on completions at many cursor points of real code.
//
// For each cursor point (the held-out FIM evaluation cases of tools/train/eval, or line starts of
// a --source file) the prompt is the
// SPM FIM layout the embedded model is trained with (BOS <fim_hole> suffix <fim_begin> prefix
// <fim_end>) and the engine generates up to --max-tokens greedily, with speculation off and on;
// outputs must be identical. Reports accepted tokens per verification step, decode tokens/s,
// end-to-end latency, the speed-up (for every completion, for the multi-line ones: text over
// two or more non-blank lines, and for the multi-line ones that typing-through would not answer),
// and the cost of one forward over n tokens (n = 1..9) that
// decides where verifying a draft pays. JSON to bench/results/speculation-<date>.json (or --out).
//
//   bench_speculation [--model DIR] [--cases JSONL | --source FILE] [--points N] [--max-tokens N] [--threads N]
//                     [--draft-length K]   (-1: the engine's adaptive policy; else fixed)
//                     [--reps N]           (each point N times per mode, its fastest decode kept)
//                     [--dump-tokens FILE] (each point's prompt, greedy output ids, whether it is
//                                           multi-line and the suggestion one keystroke earlier (the
//                                           draft_hint), JSON lines: bench/speculation/simulate_drafts.py
//                                           replays drafters on them offline)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/cpu/kernels.h"
#include "engine/engine.h"
#include "engine/model.h"
#include "engine/tokenizer/tokenizer.h"

using namespace ghostline;
using namespace ghostline::engine;

namespace {

const std::string kRoot = GHOSTLINE_SOURCE_DIR;

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}

// Milliseconds of one forward over n new tokens after a `past`-token context (median of reps).
double forward_ms(Model& m, int past, int n, int reps) {
  const int B = 16;
  std::vector<double> t;
  std::vector<float> logits;
  for (int r = 0; r < reps; ++r) {
    StepBatch b;
    SequenceStep s;
    s.n_past = past;
    s.n_new = n;
    s.all_logits = true;
    for (int i = 0; i * B < past + n; ++i) s.block_table.push_back(i);
    for (int i = 0; i < n; ++i) b.tokens.push_back(100 + (i * 37) % 1000);
    b.seqs.push_back(s);
    auto t0 = std::chrono::steady_clock::now();
    if (!m.forward(b, logits)) return -1;
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The commit the sources are at (results name it), or "unknown".
std::string git_commit() {
  std::string out;
  if (FILE* f = popen(("git -C '" + kRoot + "' rev-parse --short=10 HEAD 2>/dev/null").c_str(), "r")) {
    char buf[64];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model_path = arg(argc, argv, "model", kRoot + "/models/ghostline-coder-tiny");
  // Cursor points: the held-out FIM evaluation cases (file text with the middle removed, 1-based
  // line and column), or with --source FILE the starts of lines spread over that file.
  const std::string cases_path = arg(argc, argv, "cases", kRoot + "/tools/train/eval/fim_cases.jsonl");
  const std::string source = arg(argc, argv, "source", "");
  const int points = std::stoi(arg(argc, argv, "points", "40"));
  const int max_tokens = std::stoi(arg(argc, argv, "max-tokens", "64"));
  const int threads = std::stoi(arg(argc, argv, "threads", "0"));
  const int reps = std::max(1, std::stoi(arg(argc, argv, "reps", "1")));
  const size_t prefix_chars = 1500, suffix_chars = 400;

  auto tok = Tokenizer::from_model_dir(model_path);
  if (!tok) { std::fprintf(stderr, "bench_speculation: %s\n", tok.error().message.c_str()); return 1; }
  const Tokenizer& T = **tok;
  const int32_t bos = T.bos_id().value_or(0);
  const int32_t fim_begin = T.token_id("<｜fim▁begin｜>").value_or(0);
  const int32_t fim_hole = T.token_id("<｜fim▁hole｜>").value_or(0);
  const int32_t fim_end = T.token_id("<｜fim▁end｜>").value_or(0);

  struct Point {
    std::string text;
    size_t cursor;
  };
  std::vector<Point> cursors;
  auto read_all = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  if (!source.empty()) {
    const std::string text = read_all(source);
    std::vector<size_t> line_starts;
    for (size_t i = 200; i < text.size(); ++i)
      if (text[i - 1] == '\n' && text[i] != '\n') line_starts.push_back(i);
    for (int k = 0; k < points && !line_starts.empty(); ++k)
      cursors.push_back({text, line_starts[k * line_starts.size() / points]});
  } else {
    std::ifstream in(cases_path);
    std::string line;
    while (static_cast<int>(cursors.size()) < points && std::getline(in, line)) {
      auto c = nlohmann::json::parse(line, nullptr, false);
      if (c.is_discarded() || !c.contains("text")) continue;
      const std::string text = c["text"].get<std::string>();
      // 1-based line, then 1-based column in Unicode characters.
      size_t pos = 0;
      for (int l = 1; l < c["line"].get<int>() && pos != std::string::npos; ++l) {
        pos = text.find('\n', pos);
        if (pos != std::string::npos) ++pos;
      }
      if (pos == std::string::npos) continue;
      for (int col = 1; col < c["column"].get<int>() && pos < text.size(); ++col) {
        ++pos;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      }
      cursors.push_back({text, pos});
    }
  }
  if (cursors.empty()) { std::fprintf(stderr, "bench_speculation: no cursor points\n"); return 1; }

  LoadOptions lo;
  lo.threads = threads;
  // The cost of verifying n tokens at once, against one decode step.
  nlohmann::json cost = nlohmann::json::array();
  {
    auto m = load_model(model_path, lo);
    if (!m) { std::fprintf(stderr, "bench_speculation: %s\n", m.error().message.c_str()); return 1; }
    if (!(*m)->allocate_kv(16, 128)) return 1;
    forward_ms(**m, 0, 512, 1);  // fill the KV of a 512-token context
    std::printf("forward over n new tokens after 512 (ms):");
    const double one = forward_ms(**m, 512, 1, 15);
    for (int n = 1; n <= 9; ++n) {
      double ms = n == 1 ? one : forward_ms(**m, 512, n, 15);
      std::printf(" n=%d %.3f", n, ms);
      cost.push_back({{"n", n}, {"ms", ms}, {"relative_to_one", ms / one}});
    }
    std::printf("\n");
  }

  // One long-lived engine per mode, as in the server: the draft policy learns across requests.
  // 0: speculation off; 1: prompt lookup; 2: the oracle hint; 3: the suggestion one keystroke
  // earlier. The hint modes have engines of their own: a server sees hints of one kind, and an
  // oracle's 100% acceptance mixed into the same policy as realistic hints would lengthen the
  // realistic drafts (and the realistic rejections shorten the oracle's).
  std::unique_ptr<Engine> engines[4];
  const int draft_length = std::stoi(arg(argc, argv, "draft-length", "-1"));
  for (auto& e : engines) {
    auto m = load_model(model_path, lo);
    if (!m) return 1;
    EngineOptions eo;
    eo.kv_blocks = 512;
    eo.draft_length = draft_length;
    auto created = Engine::create(std::move(*m), *tok, eo);
    if (!created) { std::fprintf(stderr, "bench_speculation: %s\n", created.error().message.c_str()); return 1; }
    e = std::move(*created);
  }
  nlohmann::json runs = nlohmann::json::array();
  const std::string dump_path = arg(argc, argv, "dump-tokens", "");
  std::ofstream dump;
  if (!dump_path.empty()) dump.open(dump_path);
  // Per subset (0: every point, 1: multi-line completions, whose text spans two or more
  // non-blank lines, 2: the multi-line ones the model has to answer: the typed character did not
  // continue the suggestion one keystroke earlier, which the service would otherwise complete by
  // typing-through without the model): decode ms and tokens for off / on / hint, drafted and
  // accepted tokens.
  struct Totals {
    double dec_ms[4] = {0, 0, 0, 0};
    long tokens[4] = {0, 0, 0, 0}, proposed[4] = {0, 0, 0, 0}, accepted[4] = {0, 0, 0, 0};
    int points = 0;
    std::vector<double> point_speedup[4];  // per point with >= 16 decode tokens: its own on/off ratio
  } subset[3];
  double total_dec_ms[2] = {0, 0}, total_ms[2] = {0, 0};
  long total_tok[2] = {0, 0}, proposed = 0, accepted = 0, mismatches = 0;
  int steps_on = 0;
  double hint_dec_ms = 0;
  long hint_tok = 0, hint_proposed = 0, hint_accepted = 0;
  for (const Point& pt : cursors) {
    const std::string& text = pt.text;
    const size_t c = pt.cursor;
    const size_t p0 = c > prefix_chars ? c - prefix_chars : 0;
    auto prefix = T.encode(std::string_view(text).substr(p0, c - p0));
    auto suffix = T.encode(std::string_view(text).substr(c, suffix_chars));
    std::vector<int32_t> prompt = {bos, fim_hole};
    prompt.insert(prompt.end(), suffix.begin(), suffix.end());
    prompt.push_back(fim_begin);
    prompt.insert(prompt.end(), prefix.begin(), prefix.end());
    prompt.push_back(fim_end);
    std::vector<int32_t> outs[2];
    nlohmann::json row = {{"cursor", c}, {"prompt_tokens", prompt.size()}};
    GenerationStats stats[4];
    // One request through an engine: its tokens, final stats and number of stream events.
    auto generate = [&](Engine* e, bool speculation, const std::vector<int32_t>& hint, std::vector<int32_t>& tokens, int& events) {
      GenerationRequest req;
      req.prompt = prompt;
      req.sampling.max_tokens = max_tokens;
      req.speculation = speculation;
      req.draft_hint = hint;
      auto toks = std::make_shared<std::vector<int32_t>>();
      auto done = std::make_shared<std::promise<StreamEvent>>();
      auto fut = done->get_future();
      auto n_events = std::make_shared<int>(0);
      e->submit(req, [toks, done, n_events](const StreamEvent& ev) {
        toks->insert(toks->end(), ev.tokens.begin(), ev.tokens.end());
        ++*n_events;
        if (ev.finished) done->set_value(ev);
      });
      StreamEvent ev = fut.get();
      tokens = *toks;
      events = *n_events;
      return ev.stats;
    };
    auto decode_ms = [](const GenerationStats& s) { return s.total_ms - s.ttft_ms; };
    // Each mode `reps` times, off and on alternating; a point keeps each mode's fastest decode
    // (other processes only ever slow a run down). Every run's output must be the same.
    int events_on = 0;
    for (int rep = 0; rep < reps; ++rep) {
      for (int spec = 0; spec < 2; ++spec) {
        std::vector<int32_t> toks;
        int events = 0;
        const GenerationStats s = generate(engines[spec].get(), spec == 1, {}, toks, events);
        if (rep == 0) outs[spec] = toks;
        else if (toks != outs[spec]) ++mismatches;
        if (rep == 0 || decode_ms(s) < decode_ms(stats[spec])) {
          stats[spec] = s;
          if (spec) events_on = events;
        }
      }
    }
    for (int spec = 0; spec < 2; ++spec) {
      const GenerationStats& s = stats[spec];
      total_dec_ms[spec] += decode_ms(s);
      total_ms[spec] += s.total_ms;
      total_tok[spec] += std::max(0, s.generated_tokens - 1);
      if (spec) {
        proposed += s.draft_proposed;
        accepted += s.draft_accepted;
        steps_on += events_on;
      }
      row[spec ? "on" : "off"] = {{"generated", s.generated_tokens}, {"ttft_ms", s.ttft_ms}, {"total_ms", s.total_ms},
                                  {"draft_proposed", s.draft_proposed}, {"draft_accepted", s.draft_accepted},
                                  {"events", spec ? events_on : 0}};
    }
    if (outs[0] != outs[1]) ++mismatches;
    row["identical"] = outs[0] == outs[1];
    // The same cursor again with the previous suggestion as draft_hint (the user came back, or
    // the document changed elsewhere): the previous-suggestion drafter. An oracle here: the hint
    // is exactly the output of this very prompt.
    for (int rep = 0; rep < reps; ++rep) {
      std::vector<int32_t> toks;
      int events = 0;
      const GenerationStats s = generate(engines[2].get(), true, outs[0], toks, events);
      if (toks != outs[0]) ++mismatches;
      if (rep == 0 || decode_ms(s) < decode_ms(stats[2])) stats[2] = s;
    }
    {
      const GenerationStats& s = stats[2];
      hint_dec_ms += decode_ms(s);
      hint_tok += std::max(0, s.generated_tokens - 1);
      hint_proposed += s.draft_proposed;
      hint_accepted += s.draft_accepted;
      row["hint"] = {{"generated", s.generated_tokens}, {"ttft_ms", s.ttft_ms}, {"total_ms", s.total_ms},
                     {"draft_proposed", s.draft_proposed}, {"draft_accepted", s.draft_accepted}};
    }
    std::vector<int32_t> prev_hint;  // the suggestion one keystroke earlier, as the service passes it
    bool typing_through = false;     // the typed character began that suggestion
    // The realistic case: the suggestion shown one keystroke earlier (the document without the
    // character before the cursor, cursor there; greedy, untimed), which the service passes
    // as draft_hint after the user typed that character, whether or not it continued the
    // suggestion.
    {
      size_t c1 = c;
      while (c1 > 0 && (static_cast<unsigned char>(text[c1 - 1]) & 0xC0) == 0x80) --c1;
      c1 = c1 > 0 ? c1 - 1 : 0;
      const size_t q0 = c1 > prefix_chars ? c1 - prefix_chars : 0;
      auto prev_prefix = T.encode(std::string_view(text).substr(q0, c1 - q0));
      std::vector<int32_t> prev_prompt = {bos, fim_hole};
      prev_prompt.insert(prev_prompt.end(), suffix.begin(), suffix.end());
      prev_prompt.push_back(fim_begin);
      prev_prompt.insert(prev_prompt.end(), prev_prefix.begin(), prev_prefix.end());
      prev_prompt.push_back(fim_end);
      std::vector<int32_t> prev_out;
      int events = 0;
      {
        std::swap(prompt, prev_prompt);
        generate(engines[0].get(), false, {}, prev_out, events);
        std::swap(prompt, prev_prompt);
      }
      const std::string prev_text = T.decode(prev_out);
      prev_hint = T.encode(prev_text);  // as the service does with the text
      const std::string typed = text.substr(c1, c - c1);
      typing_through = !typed.empty() && prev_text.size() > typed.size() && prev_text.compare(0, typed.size(), typed) == 0;
      for (int rep = 0; rep < reps; ++rep) {
        std::vector<int32_t> toks;
        const GenerationStats s = generate(engines[3].get(), true, prev_hint, toks, events);
        if (toks != outs[0]) ++mismatches;
        if (rep == 0 || decode_ms(s) < decode_ms(stats[3])) stats[3] = s;
      }
      row["previous_keystroke"] = {{"generated", stats[3].generated_tokens}, {"ttft_ms", stats[3].ttft_ms},
                                   {"total_ms", stats[3].total_ms}, {"draft_proposed", stats[3].draft_proposed},
                                   {"draft_accepted", stats[3].draft_accepted}};
    }
    const std::string out_text = T.decode(outs[0]);
    const size_t last = out_text.find_last_not_of(" \t\r\n"), first = out_text.find_first_not_of(" \t\r\n");
    const bool multiline = last != std::string::npos && out_text.find('\n', first) < last;
    row["multiline"] = multiline;
    row["typing_through"] = typing_through;
    if (dump.is_open())
      dump << nlohmann::json{{"prompt", prompt}, {"output", outs[0]}, {"multiline", multiline}, {"previous_hint", prev_hint}}.dump()
           << "\n";
    for (int sub = 0; sub < 3; ++sub) {
      if (sub >= 1 && !multiline) continue;
      if (sub == 2 && typing_through) continue;
      Totals& tt = subset[sub];
      ++tt.points;
      for (int m = 0; m < 4; ++m) {
        tt.dec_ms[m] += stats[m].total_ms - stats[m].ttft_ms;
        const int n = stats[m].generated_tokens - 1;
        if (n >= 16 && stats[0].generated_tokens - 1 == n)
          tt.point_speedup[m].push_back((stats[0].total_ms - stats[0].ttft_ms) / std::max(1e-9, stats[m].total_ms - stats[m].ttft_ms));
        tt.tokens[m] += std::max(0, stats[m].generated_tokens - 1);
        tt.proposed[m] += stats[m].draft_proposed;
        tt.accepted[m] += stats[m].draft_accepted;
      }
    }
    runs.push_back(row);
  }
  // Decode tokens per verification step: every decode step yields one token plus its accepted
  // draft tokens.
  auto subset_json = [](const Totals& tt) {
    nlohmann::json j = {{"points", tt.points}};
    const char* names[4] = {"off", "on", "hint", "previous_keystroke"};
    const double tps_off = tt.tokens[0] * 1000.0 / std::max(1e-9, tt.dec_ms[0]);
    for (int m = 0; m < 4; ++m) {
      const double tps = tt.tokens[m] * 1000.0 / std::max(1e-9, tt.dec_ms[m]);
      const long steps = std::max(1L, tt.tokens[m] - tt.accepted[m]);
      std::vector<double> ps = tt.point_speedup[m];
      std::sort(ps.begin(), ps.end());
      const double median = ps.empty() ? 0.0 : ps[ps.size() / 2];
      j[names[m]] = {{"decode_tokens_per_s", tps}, {"speedup", tps / std::max(1e-9, tps_off)}, {"decode_tokens", tt.tokens[m]},
                     {"median_point_speedup", median}, {"points_timed", ps.size()},
                     {"draft_proposed", tt.proposed[m]}, {"draft_accepted", tt.accepted[m]},
                     {"tokens_per_step", static_cast<double>(tt.tokens[m]) / steps}};
    }
    return j;
  };
  const char* subset_names[3] = {"all completions", "multi-line completions", "multi-line, model needed (no typing-through)"};
  for (int sub = 0; sub < 3; ++sub) {
    const Totals& tt = subset[sub];
    const auto j = subset_json(tt);
    std::printf("%s (%d points): off %.0f tok/s; lookup %.2fx (median point %.2fx; %.2f tokens/step, %ld of %ld drafted "
                "accepted); previous suggestion %.2fx (median point %.2fx; %.2f tokens/step); the suggestion one keystroke "
                "earlier %.2fx (median point %.2fx; %.2f tokens/step)\n",
                subset_names[sub], tt.points, j["off"]["decode_tokens_per_s"].get<double>(),
                j["on"]["speedup"].get<double>(), j["on"]["median_point_speedup"].get<double>(), j["on"]["tokens_per_step"].get<double>(),
                tt.accepted[1], tt.proposed[1], j["hint"]["speedup"].get<double>(), j["hint"]["median_point_speedup"].get<double>(),
                j["hint"]["tokens_per_step"].get<double>(), j["previous_keystroke"]["speedup"].get<double>(),
                j["previous_keystroke"]["median_point_speedup"].get<double>(), j["previous_keystroke"]["tokens_per_step"].get<double>());
  }
  const double tps_hint = hint_tok * 1000.0 / std::max(1e-9, hint_dec_ms);
  const double tps_off = total_tok[0] * 1000.0 / std::max(1e-9, total_dec_ms[0]);
  const double tps_on = total_tok[1] * 1000.0 / std::max(1e-9, total_dec_ms[1]);
  std::printf("%zu cursor points, up to %d tokens each, model %s\n", cursors.size(), max_tokens, model_path.c_str());
  std::printf("speculation off: %.0f decode tok/s, mean latency %.1f ms\n", tps_off, total_ms[0] / cursors.size());
  std::printf("speculation on:  %.0f decode tok/s, mean latency %.1f ms; drafts %ld proposed, %ld accepted (%.0f%%), "
              "%.2f tokens per event\n",
              tps_on, total_ms[1] / cursors.size(), proposed, accepted, proposed ? 100.0 * accepted / proposed : 0.0,
              steps_on ? double(total_tok[1] + cursors.size()) / steps_on : 0.0);
  std::printf("previous suggestion as draft: %.0f decode tok/s (%.2fx), drafts %ld proposed, %ld accepted\n", tps_hint,
              tps_hint / std::max(1e-9, tps_off), hint_proposed, hint_accepted);
  std::printf("decode speed-up %.2fx; %ld mismatching outputs (of %zu points x 2)\n", tps_on / std::max(1e-9, tps_off),
              mismatches, cursors.size());

  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  const std::string out_path = arg(argc, argv, "out", kRoot + "/bench/results/speculation-" + date + ".json");
  nlohmann::json doc = {{"benchmark", "speculation"}, {"date", date}, {"commit", git_commit()}, {"model", model_path}, {"points_from", source.empty() ? cases_path : source},
                        {"max_tokens", max_tokens}, {"threads", threads}, {"reps", reps}, {"kernels", cpu::kernel_isa()}, {"draft_length", draft_length},
                        {"hardware_threads", std::thread::hardware_concurrency()},
                        {"decode_tokens_per_s_off", tps_off}, {"decode_tokens_per_s_on", tps_on},
                        {"speedup", tps_on / std::max(1e-9, tps_off)},
                        {"decode_tokens_per_s_hint", tps_hint}, {"speedup_hint", tps_hint / std::max(1e-9, tps_off)},
                        {"hint_draft_proposed", hint_proposed}, {"hint_draft_accepted", hint_accepted}, {"draft_proposed", proposed},
                        {"draft_accepted", accepted}, {"mismatches", mismatches}, {"forward_cost", cost},
                        {"all", subset_json(subset[0])}, {"multiline", subset_json(subset[1])},
                        {"multiline_model_needed", subset_json(subset[2])},
                        {"points", runs}};
  std::ofstream(out_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return mismatches == 0 ? 0 : 1;
}
