// Quick fixes: the FIM prompt for a span of a hole, the hole's new text from a generation, the
// search over spans (greedy, then sampled) and compute_fixes over a LoadedModel.
#include "completion/fix.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "completion/loaded_model.h"

namespace ghostline::completion {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

size_t line_start_of(std::string_view text, size_t pos) {
  if (pos == 0) return 0;
  size_t nl = text.rfind('\n', pos - 1);
  return nl == std::string_view::npos ? 0 : nl + 1;
}

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t nl = s.find('\n', at);
    if (nl == std::string_view::npos) {
      out.push_back(s.substr(at));
      break;
    }
    out.push_back(s.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

bool utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Whole lines before `pos` (pos at a line start) within `budget` tokens.
std::string_view window_before(std::string_view text, size_t pos, size_t budget, const TokenCounter& count) {
  size_t start = pos, used = 0;
  while (start > 0) {
    size_t ls = line_start_of(text, start - 1);
    size_t n = count(text.substr(ls, start - ls));
    if (used + n > budget) break;
    used += n;
    start = ls;
  }
  return text.substr(start, pos - start);
}

// Text from `pos` to the end of a whole line, within `budget` tokens (the first piece always).
std::string_view window_after(std::string_view text, size_t pos, size_t budget, const TokenCounter& count) {
  size_t end = pos, used = 0;
  while (end < text.size()) {
    size_t nl = text.find('\n', end);
    size_t next = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t n = count(text.substr(end, next - end));
    if (used + n > budget && end > pos) break;
    if (end == pos && n > budget) {
      // One enormous line (minified code): keep about `budget` tokens of it.
      size_t cut = std::min(next, pos + budget * 3);
      while (cut > pos && cut < text.size() && utf8_continuation(text[cut])) --cut;
      return text.substr(pos, cut - pos);
    }
    used += n;
    end = next;
    if (used > budget) break;
  }
  return text.substr(pos, end - pos);
}

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// The model, asked for the middle of a line, often goes on with what follows it ("return x" where
// " x * x" follows): drop the longest end of `g` that repeats a beginning of `rest`, cut where a
// word ends, with something other than blanks in it.
std::string_view cut_overlap(std::string_view g, std::string_view rest) {
  for (size_t k = std::min(g.size(), rest.size()); k >= 1; --k) {
    const std::string_view head = rest.substr(0, k);
    if (g.substr(g.size() - k) != head) continue;
    if (head.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (k < rest.size() && is_word_byte(rest[k - 1]) && is_word_byte(rest[k])) continue;
    return g.substr(0, g.size() - k);
  }
  return g;
}

}  // namespace

std::string fix_title(std::string_view message) {
  std::string m(message.substr(0, message.find('\n')));
  return "Fix with Ghostline: " + m;
}

std::string hint_line(Language language, std::string_view indentation, std::string_view message) {
  std::string m;
  for (char c : message.substr(0, message.find_first_of("\r\n"))) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
    m += c;
  }
  if (m.size() > 120) {
    size_t cut = 120;
    while (cut > 0 && utf8_continuation(m[cut])) --cut;
    m.resize(cut);
  }
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return std::string(indentation) + line_comment(language) + " error: " + m + "\n";
}

FixPrompt build_fix_prompt(const Snapshot& snapshot, const FixSpan& span, const Diagnostic& diagnostic,
                           const FimTemplate& fim, const TokenCounter& count_tokens, const FixOptions& options) {
  const std::string_view text = snapshot.text();
  const TokenCounter count = count_tokens ? count_tokens : TokenCounter(estimate_tokens);
  const Hole& hole = span.hole;
  FixPrompt p;
  p.prefix = std::string(window_before(text, hole.start, options.max_prefix_tokens, count));
  if (options.hint) {
    size_t i = hole.start;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    p.prefix += hint_line(snapshot.language(), text.substr(hole.start, i - hole.start), diagnostic.message);
  }
  p.prefix += text.substr(hole.start, span.start - hole.start);
  p.prefix += span.lead;
  p.suffix = std::string(window_after(text, span.end, options.max_suffix_tokens, count));
  Context c;
  c.language = snapshot.language();
  c.path = snapshot.path();
  c.prefix = p.prefix;
  c.suffix = p.suffix;
  c.cursor = span.start;
  p.prompt = fim.render(c);
  p.stop = fim.stop_tokens;
  p.required_prefix = span.required;
  if (span.single_line()) {
    p.stop.push_back("\n");
    p.max_tokens = options.max_line_tokens;
  } else {
    const size_t hole_tokens = count(text.substr(hole.start, hole.end - hole.start));
    p.max_tokens = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(options.max_hole_tokens, 1)), hole_tokens * 2 + 16));
  }
  return p;
}

std::string hole_text_from_generation(const Snapshot& snapshot, const FixSpan& span, std::string_view generated) {
  const std::string_view text = snapshot.text();
  const Hole& hole = span.hole;
  std::string middle;
  if (span.kind == SpanKind::Word) {
    // The model writes on past the word (the rest of its line, often not quite the old one):
    // only its first word replaces the lone word.
    size_t n = 0;
    while (n < generated.size() && is_word_byte(generated[n])) ++n;
    middle = std::string(generated.substr(0, n));
  } else if (span.single_line()) {
    std::string_view g = rstrip(generated.substr(0, generated.find_first_of("\r\n")));
    const size_t eol = std::min(text.find('\n', span.end), text.size());
    g = cut_overlap(g, rstrip(text.substr(span.end, eol - span.end)));
    middle = std::string(g);
    if (span.kind == SpanKind::NewLine && !middle.empty()) middle = span.lead + middle + '\n';
  } else {
    std::vector<std::string_view> gen = split_lines(rstrip(generated));
    if (gen.size() == 1 && gen[0].empty()) gen.clear();
    // Lines repeating what follows the hole, or what precedes it, are not part of the fix.
    const std::vector<std::string_view> after = split_lines(text.substr(hole.end));
    for (size_t k = std::min(gen.size(), after.size()); k >= 1; --k) {
      bool same = true, any_code = false;
      for (size_t i = 0; i < k && same; ++i) {
        same = rstrip(gen[gen.size() - k + i]) == rstrip(after[i]);
        any_code = any_code || !rstrip(after[i]).empty();
      }
      if (same && any_code) {
        gen.resize(gen.size() - k);
        break;
      }
    }
    const std::vector<std::string_view> before = split_lines(text.substr(0, hole.start));
    // `before` ends with the empty piece after the hole's preceding '\n'.
    const size_t n_before = before.empty() ? 0 : before.size() - 1;
    for (size_t k = std::min(gen.size(), n_before); k >= 1; --k) {
      bool same = true, any_code = false;
      for (size_t i = 0; i < k && same; ++i) {
        same = rstrip(gen[i]) == rstrip(before[n_before - k + i]);
        any_code = any_code || !rstrip(gen[i]).empty();
      }
      if (same && any_code) {
        gen.erase(gen.begin(), gen.begin() + static_cast<long>(k));
        break;
      }
    }
    for (size_t i = 0; i < gen.size(); ++i) {
      middle += rstrip(gen[i]);
      if (i + 1 < gen.size()) middle += '\n';
    }
    const std::string_view old_span = text.substr(span.start, span.end - span.start);
    if (!middle.empty() && !old_span.empty() && old_span.back() == '\n') middle += '\n';
  }
  return std::string(text.substr(hole.start, span.start - hole.start)) + middle +
         std::string(text.substr(span.end, hole.end - span.end));
}

Expected<std::vector<Fix>> search_fixes(const Snapshot& snapshot, const Diagnostic& diagnostic, const FimTemplate& fim,
                                        const TokenCounter& count_tokens, const FixGenerator& generate,
                                        const CancelToken& cancel, const FixOptions& options, FixReport* report) {
  const auto t0 = Clock::now();
  auto plan = plan_fix(snapshot, diagnostic, options);
  if (!plan) return plan.error();
  if (report) report->plan = *plan;
  const std::string& text = snapshot.text();

  struct Valid {
    DocumentEdit edit;
    FixCheck check;
    double mean_logprob;
  };
  std::vector<Valid> valid;
  int generations = 0;
  std::optional<Error> cancelled;

  auto budget_left = [&] {
    if (generations >= options.max_generations) return false;
    return options.max_total_ms <= 0 || ms_since(t0) < options.max_total_ms;
  };
  auto attempt = [&](const FixSpan& span, const FixSampling& sampling) {
    if (cancel.cancelled()) {
      cancelled = make_error(ErrorCode::Cancelled, "cancelled");
      return;
    }
    const auto ta = Clock::now();
    ++generations;
    FixPrompt prompt = build_fix_prompt(snapshot, span, diagnostic, fim, count_tokens, options);
    auto cand = generate(prompt, span, sampling);
    FixAttempt a;
    a.span = span;
    a.sampling = sampling;
    if (!cand) {
      if (cand.error().code == ErrorCode::Cancelled || cancel.cancelled()) {
        cancelled = make_error(ErrorCode::Cancelled, "cancelled");
        return;
      }
      a.check.reason = "generation failed: " + cand.error().message;
    } else {
      a.generated = cand->text;
      a.mean_logprob = cand->mean_logprob;
      const std::string hole_text = hole_text_from_generation(snapshot, span, cand->text);
      const std::string edited = text.substr(0, span.hole.start) + hole_text + text.substr(span.hole.end);
      a.edit = minimal_line_edit(text, edited);
      if (a.edit) {
        a.check = check_fix(snapshot, SyntaxErrors{plan->errors_before, plan->error_bytes_before}, span.hole, {*a.edit}, options);
      } else {
        a.check.errors_before = plan->errors_before;
        a.check.reason = "no change";
      }
      if (a.check.ok) valid.push_back(Valid{*a.edit, a.check, a.mean_logprob});
    }
    a.ms = ms_since(ta);
    if (report) report->attempts.push_back(std::move(a));
  };
  auto clean_found = [&] {
    return options.stop_at_first_clean &&
           std::any_of(valid.begin(), valid.end(), [](const Valid& v) { return v.check.errors_after == 0; });
  };

  // Greedy over every span, cheapest first.
  for (const auto& span : plan->spans) {
    if (!budget_left() || cancelled || clean_found()) break;
    attempt(span, FixSampling{0.0f, 1.0f, 0});
  }
  // Samples when nothing validated: rounds over the first spans, ranked together.
  const size_t n_sampled = std::min(options.sampled_spans, plan->spans.size());
  for (int round = 0; valid.empty() && !cancelled && round < options.sample_rounds; ++round)
    for (size_t i = 0; i < n_sampled && budget_left() && !cancelled; ++i)
      attempt(plan->spans[i], FixSampling{options.temperature, options.top_p,
                                          options.seed + static_cast<uint64_t>(generations)});
  if (report) report->total_ms = ms_since(t0);
  if (cancelled) return *cancelled;

  std::stable_sort(valid.begin(), valid.end(), [](const Valid& a, const Valid& b) {
    if (a.check.errors_after != b.check.errors_after) return a.check.errors_after < b.check.errors_after;
    return a.mean_logprob > b.mean_logprob;
  });
  std::vector<Fix> fixes;
  std::set<std::tuple<size_t, size_t, std::string>> seen;
  for (const auto& v : valid) {
    if (fixes.size() >= options.max_fixes) break;
    if (!seen.insert({v.edit.start, v.edit.old_end, v.edit.text}).second) continue;
    fixes.push_back(Fix{fix_title(diagnostic.message), {v.edit}});
  }
  return fixes;
}

Expected<std::vector<Fix>> compute_fixes(const LoadedModel& model, const Snapshot& snapshot, const Diagnostic& diagnostic,
                                         const CancelToken& cancel, const FixOptions& options, FixReport* report) {
  if (!model.engine) return make_error(ErrorCode::InvalidArgument, "compute_fixes: the model has no engine");
  auto generate = [&](const FixPrompt& prompt, const FixSpan& span, const FixSampling& sampling) -> Expected<FixCandidate> {
    engine::GenerationRequest request;
    request.prompt = model.encode_prompt(prompt.prompt);
    request.sampling.temperature = sampling.temperature;
    request.sampling.top_p = sampling.top_p;
    request.sampling.seed = sampling.seed;
    request.sampling.max_tokens = prompt.max_tokens;
    request.sampling.stop = prompt.stop;
    request.logprobs = true;
    request.required_prefix = prompt.required_prefix;
    request.speculation = options.speculation;
    // A rewrite that runs far past the hole's length is not going to be a fix: stop it there.
    const size_t hole_lines = static_cast<size_t>(std::count(snapshot.text().begin() + static_cast<long>(span.hole.start),
                                                             snapshot.text().begin() + static_cast<long>(span.hole.end), '\n'));
    std::function<bool(std::string_view)> until;
    if (!span.single_line())
      until = [hole_lines](std::string_view t) { return static_cast<size_t>(std::count(t.begin(), t.end(), '\n')) > hole_lines + 4; };
    auto g = run_generation(model, std::move(request), cancel, until);
    if (!g) return g.error();
    FixCandidate c;
    c.text = std::move(g->text);
    c.tokens = static_cast<int>(g->tokens.size());
    if (!g->logprobs.empty()) {
      double sum = 0;
      for (float lp : g->logprobs) sum += lp;
      c.mean_logprob = sum / static_cast<double>(g->logprobs.size());
    }
    return c;
  };
  TokenCounter count = [&model](std::string_view t) { return model.count_tokens(t); };
  return search_fixes(snapshot, diagnostic, model.fim, count, generate, cancel, options, report);
}

}  // namespace ghostline::completion
