// bench_quickfix: the quick-fix corpus (tests/fixtures/fixes: broken snippets in Python, C++ and
// JavaScript with their expected fixed versions) through compute_fixes with a real model.
//
// For each broken file the diagnostic is the first one Ghostline itself reports (fix_diagnostics:
// tree-sitter syntax errors plus Python indentation errors), as the language server would offer
// it. A case is "fixed exactly" when the offered edit turns the file into the expected version
// byte for byte, and "parses clean" when the edited file has no syntax error left. Every offered
// fix is checked again here, independently of the search: fewer errors than before and no byte
// changed outside its hole (violations are counted and must be 0). With --synthetic, the same
// over generated cases: one error put into clean source files of this repository (corrupt.h; not
// in the model's training data), the original file being the expected fix. JSON with date and
// commit to bench/results/quickfix-<date>.json (or --out).
//
//   bench_quickfix [--model DIR] [--corpus DIR] [--threads N] [--max-generations N] [--no-hint]
//                  [--exhaustive] [--only SUBSTRING] [--out FILE] [--verbose]
//                  [--synthetic [--per-category N] [--max-per-language N] [--seed S]]
//                  [--commit SHA]   (the commit a tree without .git was exported from)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/quickfix/corrupt.h"
#include "completion/fix.h"
#include "completion/loaded_model.h"

using namespace ghostline;
using namespace ghostline::completion;
namespace fs = std::filesystem;

namespace {

const std::string kRoot = GHOSTLINE_SOURCE_DIR;

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return fallback;
}
bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == "--" + name) return true;
  return false;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

struct Case {
  std::string name, language, category;
  std::string path;            // for the language and the parse
  std::string broken, expected;
};

// <lang>_<category>_<n>.<ext> beside <lang>_<category>_<n>.fixed.<ext>
std::vector<Case> load_corpus(const fs::path& dir) {
  std::vector<Case> cases;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path p = entry.path();
    const std::string stem = p.stem().string();
    if (stem.find(".fixed") != std::string::npos) continue;
    fs::path fixed = p.parent_path() / (stem + ".fixed" + p.extension().string());
    if (!fs::exists(fixed)) continue;
    Case c;
    c.name = p.filename().string();
    c.path = p.string();
    c.broken = read_file(p);
    c.expected = read_file(fixed);
    c.language = stem.substr(0, stem.find('_'));
    const size_t a = stem.find('_'), b = stem.rfind('_');
    c.category = a != std::string::npos && b > a ? stem.substr(a + 1, b - a - 1) : "other";
    cases.push_back(c);
  }
  std::sort(cases.begin(), cases.end(), [](const Case& x, const Case& y) { return x.name < y.name; });
  return cases;
}

struct Tally {
  int cases = 0, offered = 0, exact = 0, clean = 0;
  nlohmann::json json() const {
    auto frac = [&](int n) { return cases ? static_cast<double>(n) / cases : 0.0; };
    return {{"cases", cases}, {"offered", offered}, {"exact", exact}, {"parses_clean", clean},
            {"offered_fraction", frac(offered)}, {"exact_fraction", frac(exact)}, {"parses_clean_fraction", frac(clean)}};
  }
};

// Clean source files of this repository for --synthetic, per language, in a stable order.
std::vector<std::string> synthetic_sources() {
  std::vector<std::string> out;
  for (const char* dir : {"bench", "tools/train", "completion", "lsp", "tests/integration", "tests/lsp", "tests/e2e"}) {
    const fs::path root = fs::path(kRoot) / dir;
    if (!fs::exists(root)) continue;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
      const std::string name = it->path().filename().string();
      if (it->is_directory() && (name == "node_modules" || name == "fixtures" || name == "results" || name == "runs")) {
        it.disable_recursion_pending();
        continue;
      }
      const std::string ext = it->path().extension().string();
      if (ext == ".py" || ext == ".cpp" || ext == ".js") out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Section {
  Tally all;
  std::map<std::string, Tally> by_language, by_category;
  std::map<std::string, int> winning_span;
  int violations = 0;
  std::vector<double> latencies;
  nlohmann::json rows = nlohmann::json::array();

  double pct(double q) const {
    if (latencies.empty()) return 0.0;
    std::vector<double> l = latencies;
    std::sort(l.begin(), l.end());
    return l[std::min(l.size() - 1, static_cast<size_t>(q * l.size()))];
  }
  void print(const char* title) const {
    std::printf("\n%s — %d cases: offered %d (%.0f%%), exact %d (%.0f%%), parses clean %d (%.0f%%); contract violations %d; "
                "latency p50 %.0f ms p90 %.0f ms\n",
                title, all.cases, all.offered, 100.0 * all.offered / std::max(1, all.cases), all.exact,
                100.0 * all.exact / std::max(1, all.cases), all.clean, 100.0 * all.clean / std::max(1, all.cases), violations,
                pct(0.5), pct(0.9));
    for (const auto& [k, t] : by_language) std::printf("  %-22s %3d cases  offered %3d  exact %3d  clean %3d\n", k.c_str(), t.cases, t.offered, t.exact, t.clean);
    for (const auto& [k, t] : by_category) std::printf("  %-22s %3d cases  offered %3d  exact %3d  clean %3d\n", k.c_str(), t.cases, t.offered, t.exact, t.clean);
  }
  nlohmann::json json() const {
    nlohmann::json by_lang = nlohmann::json::object(), by_cat = nlohmann::json::object();
    for (const auto& [k, t] : by_language) by_lang[k] = t.json();
    for (const auto& [k, t] : by_category) by_cat[k] = t.json();
    return {{"summary", all.json()},
            {"contract_violations", violations},
            {"latency_ms", {{"p50", pct(0.5)}, {"p90", pct(0.9)}, {"max", latencies.empty() ? 0.0 : *std::max_element(latencies.begin(), latencies.end())}}},
            {"by_language", by_lang},
            {"by_category", by_cat},
            {"winning_span", winning_span},
            {"cases", rows}};
  }
};

void evaluate(const LoadedModel& model, const Case& c, const FixOptions& options, bool verbose, Section& out) {
  Snapshot snap = parse_snapshot(c.path, language_from("", c.path), c.broken);
  auto diags = fix_diagnostics(snap);
  nlohmann::json row = {{"case", c.name}, {"language", c.language}, {"category", c.category}};
  bool offered = false, exact = false, clean = false;
  if (diags.empty()) {
    row["error"] = "no diagnostic";
  } else {
    const Diagnostic& d = diags.front();
    row["diagnostic"] = {{"start", d.start}, {"end", d.end}, {"message", d.message}};
    FixReport report;
    auto t0 = std::chrono::steady_clock::now();
    auto fixes = compute_fixes(model, snap, d, CancelToken(), options, &report);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    out.latencies.push_back(ms);
    row["ms"] = ms;
    row["generations"] = report.attempts.size();
    if (!fixes) {
      row["error"] = fixes.error().message;
    } else if (!fixes->empty()) {
      offered = true;
      const DocumentEdit& e = fixes->front().edits.front();
      std::string edited = c.broken;
      edited.replace(e.start, e.old_end - e.start, e.text);
      exact = edited == c.expected;
      const size_t errors_before = count_fix_errors(snap);
      const size_t errors_after = count_fix_errors(parse_snapshot(c.path, snap.language(), edited));
      clean = errors_after == 0;
      // Independent re-check of the contract: parses better, nothing outside the hole.
      const FixAttempt* winner = nullptr;
      for (const auto& a : report.attempts)
        if (a.check.ok && a.edit && a.edit->start == e.start && a.edit->old_end == e.old_end && a.edit->text == e.text) {
          winner = &a;
          break;
        }
      const bool outside = !winner || e.start < winner->span.hole.start || e.old_end > winner->span.hole.end;
      if (errors_after >= errors_before || outside) ++out.violations;
      if (winner) {
        ++out.winning_span[span_kind_name(winner->span.kind)];
        row["span"] = span_kind_name(winner->span.kind);
        row["hole"] = hole_level_name(winner->span.hole.level);
        row["greedy"] = winner->sampling.temperature == 0;
      }
      row["edit"] = {{"start", e.start}, {"old_end", e.old_end}, {"old", c.broken.substr(e.start, e.old_end - e.start)}, {"new", e.text}};
    }
    if (verbose) {
      std::fprintf(stderr, "%s: %s\n", c.name.c_str(), d.message.c_str());
      for (const auto& a : report.attempts)
        std::fprintf(stderr, "  %-12s %-9s T=%.1f lp=%6.2f %s %-40.40s | %s\n", span_kind_name(a.span.kind),
                     hole_level_name(a.span.hole.level), a.sampling.temperature, a.mean_logprob, a.check.ok ? "OK " : "no ",
                     nlohmann::json(a.generated).dump().c_str(), a.check.reason.c_str());
    }
  }
  row["offered"] = offered;
  row["exact"] = exact;
  row["parses_clean"] = clean;
  out.rows.push_back(row);
  for (Tally* t : {&out.all, &out.by_language[c.language], &out.by_category[c.category]}) {
    ++t->cases;
    t->offered += offered;
    t->exact += exact;
    t->clean += clean;
  }
  std::printf("%-48s %-8s %-6s %-6s %s\n", c.name.c_str(), offered ? "offered" : "-", exact ? "exact" : "-",
              clean ? "clean" : "-", row.contains("ms") ? (std::to_string(static_cast<int>(row["ms"].get<double>())) + " ms").c_str() : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model_path = arg(argc, argv, "model", kRoot + "/models/ghostline-coder-tiny");
  const fs::path corpus = arg(argc, argv, "corpus", kRoot + "/tests/fixtures/fixes");
  const std::string only = arg(argc, argv, "only", "");
  const bool verbose = flag(argc, argv, "verbose");
  const bool synthetic = flag(argc, argv, "synthetic");
  FixOptions options;
  options.hint = !flag(argc, argv, "no-hint");
  options.stop_at_first_clean = !flag(argc, argv, "exhaustive");
  options.max_generations = std::stoi(arg(argc, argv, "max-generations", std::to_string(options.max_generations)));

  ModelLoadOptions load;
  load.device = arg(argc, argv, "device", "cpu");
  load.threads = std::stoi(arg(argc, argv, "threads", "0"));
  auto model = load_model_for_completion(model_path, load);
  if (!model) {
    std::fprintf(stderr, "bench_quickfix: %s\n", model.error().message.c_str());
    return 1;
  }
  auto cases = load_corpus(corpus);
  if (cases.empty()) {
    std::fprintf(stderr, "bench_quickfix: no <name>.<ext> + <name>.fixed.<ext> pairs in %s\n", corpus.string().c_str());
    return 1;
  }

  Section main_section;
  for (const auto& c : cases)
    if (only.empty() || c.name.find(only) != std::string::npos) evaluate(**model, c, options, verbose, main_section);

  Section synth;
  const size_t per_category = std::stoul(arg(argc, argv, "per-category", "2"));
  const size_t max_per_language = std::stoul(arg(argc, argv, "max-per-language", "100"));
  const uint64_t seed = std::stoull(arg(argc, argv, "seed", "1"));
  if (synthetic) {
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::map<std::string, size_t> per_language;
    std::vector<Case> generated;
    for (const auto& path : synthetic_sources()) {
      Snapshot clean = parse_snapshot(path, language_from("", path), read_file(path));
      std::string rel = fs::relative(path, kRoot).string();
      for (auto& k : ghostline::bench::corrupt_file(path, clean, per_category, rng)) {
        if (per_language[k.language] >= max_per_language) continue;
        ++per_language[k.language];
        generated.push_back(Case{rel + k.name.substr(path.size()), k.language, k.category, path, std::move(k.broken), std::move(k.original)});
      }
    }
    for (const auto& c : generated)
      if (only.empty() || c.name.find(only) != std::string::npos) evaluate(**model, c, options, verbose, synth);
  }

  main_section.print("corpus (tests/fixtures/fixes)");
  if (synthetic) synth.print("synthetic (one error put into clean files of this repository)");

  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  // --commit names the commit a source tree without .git was exported from (git archive).
  const std::string exported_from = arg(argc, argv, "commit", "");
  const std::string commit = !exported_from.empty() ? exported_from
                                                    : command_output("git -C '" + kRoot + "' rev-parse --short HEAD 2>/dev/null");
  const bool dirty = exported_from.empty() &&
                     !command_output("git -C '" + kRoot + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  const std::string out_path = arg(argc, argv, "out", kRoot + "/bench/results/quickfix-" + date + ".json");
  nlohmann::json doc = main_section.json();
  doc["benchmark"] = "quickfix";
  doc["date"] = date;
  doc["commit"] = commit;
  doc["tree_dirty"] = dirty;
  if (!exported_from.empty()) doc["tree"] = "git archive of " + exported_from + " (no uncommitted changes)";
  doc["model"] = model_path;
  doc["device"] = (*model)->device;
  doc["corpus"] = corpus.string();
  doc["command"] = [&] {
    std::string s;
    for (int i = 0; i < argc; ++i) {
      if (i) s += ' ';
      s += argv[i];
    }
    return s;
  }();
  doc["options"] = {{"hint", options.hint}, {"max_generations", options.max_generations}, {"sample_rounds", options.sample_rounds},
                    {"sampled_spans", options.sampled_spans}, {"temperature", options.temperature}, {"top_p", options.top_p},
                    {"stop_at_first_clean", options.stop_at_first_clean}, {"min_similarity", options.min_similarity},
                    {"max_prefix_tokens", options.max_prefix_tokens}, {"max_suffix_tokens", options.max_suffix_tokens}};
  if (synthetic) {
    doc["synthetic"] = synth.json();
    doc["synthetic"]["settings"] = {{"per_category", per_category}, {"max_per_language", max_per_language}, {"seed", seed}};
  }
  std::ofstream(out_path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return main_section.violations == 0 && synth.violations == 0 ? 0 : 1;
}
