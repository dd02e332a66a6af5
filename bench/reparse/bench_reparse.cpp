// bench_reparse [--lines N] [--brackets]: a generated N-line (default 5,000) Python, C++ and TypeScript file is
// edited one character at a time inside a function body in its middle (a statement typed, then erased with backspace); each
// edit is Document::apply (ts_tree_edit + incremental reparse) followed by a snapshot. Prints
// the per-edit median, p90, p99 and max in microseconds, and the full parse for comparison;
// writes JSON to bench/results/reparse-<date>.json.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "completion/document.h"

using namespace ghostline::completion;
using Clock = std::chrono::steady_clock;

static std::string make_source(Language l, int lines) {
  std::string s;
  int n = 0;
  while (n < lines) {
    std::string k = std::to_string(n);
    if (l == Language::Python) {
      s += "def f" + k + "(a, b):\n    if a > b:\n        return [x * 2 for x in range(a)]\n    return {'k': b, 'n': " + k + "}\n\n";
      n += 5;
    } else if (l == Language::Cpp) {
      s += "int f" + k + "(int a, int b) {\n  if (a > b) {\n    return a * 2 + " + k + ";\n  }\n  return std::max(a, b);\n}\n\n";
      n += 7;
    } else {
      s += "export function f" + k + "(a: number, b: number): number {\n  if (a > b) {\n    return a * 2 + " + k + ";\n  }\n  return Math.max(a, b);\n}\n\n";
      n += 7;
    }
  }
  return s;
}

static double us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

int main(int argc, char** argv) {
  int lines = 5000;
  bool brackets = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--lines") && i + 1 < argc) lines = std::max(10, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--brackets")) brackets = true;
  }
  nlohmann::json results = nlohmann::json::array();
  for (Language l : {Language::Python, Language::Cpp, Language::TypeScript}) {
    std::string src = make_source(l, lines);
    auto t0 = Clock::now();
    Document doc("bench", language_name(l), src);
    double full_us = us(Clock::now() - t0);
    // Inside a function body in the middle of the file, at the start of its last statement.
    size_t at = src.find(l == Language::Python ? "\n    return {" : "\n  return std", src.size() / 2) + 1;
    // A statement without brackets: an unclosed '(' typed one character at a time would make the
    // rest of the file one broken expression (editors auto-close brackets); see --brackets.
    const std::string typed =
        brackets ? (l == Language::Python ? "    total = compute(alpha, beta) + [i for i in items]\n"
                                          : "  total = compute(alpha, beta) + items[0];\n")
                 : (l == Language::Python ? "    total = alpha + beta * gamma - delta\n"
                                          : "  total = alpha + beta * gamma - delta;\n");
    std::vector<double> times;
    for (int round = 0; round < 4; ++round) {
      for (size_t i = 0; i < typed.size(); ++i) {  // type
        auto t = Clock::now();
        if (!doc.apply(DocumentEdit{at + i, at + i, typed.substr(i, 1)})) return 1;
        (void)doc.snapshot();
        times.push_back(us(Clock::now() - t));
      }
      for (size_t i = typed.size(); i > 0; --i) {  // backspace
        auto t = Clock::now();
        if (!doc.apply(DocumentEdit{at + i - 1, at + i, ""})) return 1;
        (void)doc.snapshot();
        times.push_back(us(Clock::now() - t));
      }
    }
    if (doc.text() != src) { std::fprintf(stderr, "bench_reparse: text differs after the edits\n"); return 1; }
    std::sort(times.begin(), times.end());
    auto pct = [&](double p) { return times[std::min(times.size() - 1, size_t(p * double(times.size())))]; };
    std::printf("%-11s %d lines %zu bytes: full parse %.0f us; per edit median %.0f us, p90 %.0f, p99 %.0f, max %.0f (%zu edits)\n",
                language_name(l), lines, src.size(), full_us, pct(0.5), pct(0.9), pct(0.99), times.back(), times.size());
    results.push_back({{"language", language_name(l)}, {"lines", lines}, {"bytes", src.size()}, {"edits", times.size()},
                       {"full_parse_us", full_us}, {"edit_median_us", pct(0.5)}, {"edit_p90_us", pct(0.9)},
                       {"edit_p99_us", pct(0.99)}, {"edit_max_us", times.back()}});
  }
  char date[16];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  nlohmann::json out = {{"benchmark", "reparse"}, {"date", date}, {"typed_brackets", brackets},
                        {"note", "Document::apply (ts_tree_edit + incremental reparse) + snapshot, one character per edit"},
                        {"results", results}};
  std::string path = std::string(GHOSTLINE_SOURCE_DIR) + "/bench/results/reparse-" + (brackets ? "brackets-" : "") + date + ".json";
  std::ofstream(path) << out.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
  return 0;
}
