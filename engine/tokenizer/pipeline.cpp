// Normalizers and pre-tokenizers of tokenizer.json, each step a small struct applied in order.
#include "engine/tokenizer/pipeline.h"

#include <algorithm>

#include "engine/tokenizer/unicode_text.h"

namespace ghostline::engine::tokenizer_detail {

using json = nlohmann::json;

namespace {
Error bad(const std::string& what) { return make_error(ErrorCode::InvalidArgument, what); }
Error unsupported(const std::string& what) { return make_error(ErrorCode::Unsupported, what); }

std::string type_of(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "";
  return j["type"].get<std::string>();
}
// The pattern of Split/Replace: {"Regex": "..."} or {"String": "..."}.
struct Pattern {
  bool is_regex = false;
  std::string text;
};
Expected<Pattern> parse_pattern(const json& j, const std::string& where) {
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string())
    return Pattern{true, j["Regex"].get<std::string>()};
  if (j.is_object() && j.contains("String") && j["String"].is_string())
    return Pattern{false, j["String"].get<std::string>()};
  return bad(where + ": pattern must be {\"Regex\": ...} or {\"String\": ...}");
}
}  // namespace

// ---- normalizers ----------------------------------------------------------------------------

struct Normalizer::Step {
  enum Kind { Form, Lower, Prepend, Replace, Strip } kind = Form;
  NormalForm form = NormalForm::NFC;
  std::string a, b;  // Prepend: a; Replace: a → b
  bool left = false, right = false;
};

static Expected<void> parse_normalizer(const json& j,
                                       std::vector<std::shared_ptr<const Normalizer::Step>>* steps) {
  if (j.is_null()) return ok();
  std::string t = type_of(j);
  auto step = std::make_shared<Normalizer::Step>();
  if (t == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      return bad("normalizer Sequence without a \"normalizers\" array");
    for (const auto& n : j["normalizers"]) {
      auto r = parse_normalizer(n, steps);
      if (!r) return r;
    }
    return ok();
  } else if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
    step->form = t == "NFC" ? NormalForm::NFC : t == "NFD" ? NormalForm::NFD
               : t == "NFKC" ? NormalForm::NFKC : NormalForm::NFKD;
  } else if (t == "Lowercase") {
    step->kind = Normalizer::Step::Lower;
  } else if (t == "Prepend") {
    step->kind = Normalizer::Step::Prepend;
    step->a = j.value("prepend", "");
  } else if (t == "Replace") {
    auto p = parse_pattern(j.value("pattern", json()), "normalizer Replace");
    if (!p) return p.error();
    if (p->is_regex) return unsupported("normalizer Replace with a Regex pattern is not supported");
    step->kind = Normalizer::Step::Replace;
    step->a = p->text;
    step->b = j.value("content", "");
    if (step->a.empty()) return bad("normalizer Replace with an empty pattern");
  } else if (t == "Strip") {
    step->kind = Normalizer::Step::Strip;
    step->left = j.value("strip_left", false);
    step->right = j.value("strip_right", false);
  } else {
    return unsupported("normalizer type \"" + t + "\" is not supported");
  }
  steps->push_back(step);
  return ok();
}

Expected<Normalizer> Normalizer::parse(const json& j) {
  Normalizer n;
  auto r = parse_normalizer(j, &n.steps_);
  if (!r) return r.error();
  return n;
}

std::string Normalizer::apply(std::string text) const {
  for (const auto& s : steps_) {
    switch (s->kind) {
      case Step::Form: text = normalize(text, s->form); break;
      case Step::Lower: text = to_lower(text); break;
      case Step::Prepend: if (!text.empty()) text = s->a + text; break;
      case Step::Replace: {
        std::string out;
        for (size_t i = 0;;) {
          size_t k = text.find(s->a, i);
          if (k == std::string::npos) { out.append(text, i); break; }
          out.append(text, i, k - i);
          out += s->b;
          i = k + s->a.size();
        }
        text = std::move(out);
        break;
      }
      case Step::Strip: {
        size_t b = 0, e = text.size();
        while (s->left && b < e) {
          size_t n; char32_t c = decode_at(text, b, &n);
          if (!is_unicode_whitespace(c)) break;
          b += n;
        }
        while (s->right && e > b) {
          size_t k = e - 1;
          while (k > b && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
          size_t n; char32_t c = decode_at(text, k, &n);
          if (!is_unicode_whitespace(c)) break;
          e = k;
        }
        text = text.substr(b, e - b);
        break;
      }
    }
  }
  return text;
}

// ---- pre-tokenizers -------------------------------------------------------------------------

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct PreTokenizer::Step {
  enum Kind { Split, ByteLevel } kind = Split;
  std::shared_ptr<const Regex> regex;  // Split with a Regex pattern, or ByteLevel's use_regex
  std::string literal;                 // Split with a String pattern
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;
};

// The GPT-2 pattern ByteLevel uses when use_regex is true.
static const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

static Expected<void> parse_pre(const json& j, std::vector<std::shared_ptr<const PreTokenizer::Step>>* steps,
                                bool* byte_level) {
  if (j.is_null()) return ok();
  std::string t = type_of(j);
  auto step = std::make_shared<PreTokenizer::Step>();
  if (t == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return bad("pre_tokenizer Sequence without a \"pretokenizers\" array");
    for (const auto& p : j["pretokenizers"]) {
      auto r = parse_pre(p, steps, byte_level);
      if (!r) return r;
    }
    return ok();
  } else if (t == "Split") {
    auto p = parse_pattern(j.value("pattern", json()), "pre_tokenizer Split");
    if (!p) return p.error();
    if (p->is_regex) {
      auto re = Regex::compile(p->text);
      if (!re) return make_error(re.error().code, "pre_tokenizer Split: " + re.error().message);
      step->regex = *re;
    } else {
      if (p->text.empty()) return bad("pre_tokenizer Split with an empty String pattern");
      step->literal = p->text;
    }
    std::string b = j.value("behavior", "Isolated");
    if (b == "Removed") step->behavior = Behavior::Removed;
    else if (b == "Isolated") step->behavior = Behavior::Isolated;
    else if (b == "MergedWithPrevious") step->behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext") step->behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous") step->behavior = Behavior::Contiguous;
    else return unsupported("pre_tokenizer Split behavior \"" + b + "\" is not supported");
    step->invert = j.value("invert", false);
  } else if (t == "Digits") {
    bool individual = j.value("individual_digits", false);
    auto re = Regex::compile(individual ? R"(\p{N})" : R"(\p{N}+)");
    if (!re) return re.error();
    step->regex = *re;
    step->behavior = Behavior::Isolated;
  } else if (t == "ByteLevel") {
    step->kind = PreTokenizer::Step::ByteLevel;
    step->add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) {
      auto re = Regex::compile(kGpt2Pattern);
      if (!re) return re.error();
      step->regex = *re;
    }
    *byte_level = true;
  } else {
    return unsupported("pre_tokenizer type \"" + t + "\" is not supported");
  }
  steps->push_back(step);
  return ok();
}

Expected<PreTokenizer> PreTokenizer::parse(const json& j) {
  PreTokenizer p;
  auto r = parse_pre(j, &p.steps_, &p.byte_level_);
  if (!r) return r.error();
  return p;
}

namespace {
struct Span {
  size_t start, end;
  bool is_match;
};

// Cuts `piece` as Hugging Face's Split does and appends the non-empty parts to *out.
void split_piece(const PreTokenizer::Step& s, const std::string& piece, std::vector<std::string>* out,
                 std::vector<std::pair<size_t, size_t>>& found, std::vector<Span>& spans) {
  found.clear();
  if (s.regex) {
    s.regex->find_all(piece, &found);
  } else {
    for (size_t i = 0; (i = piece.find(s.literal, i)) != std::string::npos; i += s.literal.size())
      found.emplace_back(i, i + s.literal.size());
  }
  spans.clear();
  size_t prev = 0;
  for (auto [a, b] : found) {
    if (a > prev) spans.push_back({prev, a, false});
    spans.push_back({a, b, true});
    prev = b;
  }
  if (prev < piece.size()) spans.push_back({prev, piece.size(), false});
  if (s.invert)
    for (auto& sp : spans) sp.is_match = !sp.is_match;

  std::vector<Span> merged;
  switch (s.behavior) {
    case Behavior::Isolated: merged = spans; break;
    case Behavior::Removed:
      for (auto& sp : spans) if (!sp.is_match) merged.push_back(sp);
      break;
    case Behavior::MergedWithPrevious: {
      bool prev_match = false;
      for (auto& sp : spans) {
        if (sp.is_match && !prev_match && !merged.empty()) merged.back().end = sp.end;
        else merged.push_back(sp);
        prev_match = sp.is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        auto& sp = spans[k];
        if (sp.is_match && !prev_match && !merged.empty()) merged.back().start = sp.start;
        else merged.push_back(sp);
        prev_match = sp.is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (auto& sp : spans) {
        if (sp.is_match == prev_match && !merged.empty()) merged.back().end = sp.end;
        else merged.push_back(sp);
        prev_match = sp.is_match;
      }
      break;
    }
  }
  for (auto& sp : merged)
    if (sp.end > sp.start) out->emplace_back(piece, sp.start, sp.end - sp.start);
}
}  // namespace

void PreTokenizer::apply(const std::string& text, std::vector<std::string>* out) const {
  std::vector<std::string> cur, next;
  cur.push_back(text);
  std::vector<std::pair<size_t, size_t>> found;
  std::vector<Span> spans;
  for (const auto& s : steps_) {
    next.clear();
    for (auto& piece : cur) {
      if (s->kind == Step::ByteLevel) {
        if (s->add_prefix_space && (piece.empty() || piece[0] != ' ')) piece.insert(piece.begin(), ' ');
        if (!s->regex) {
          next.push_back(std::move(piece));
          continue;
        }
      }
      split_piece(*s, piece, &next, found, spans);
    }
    cur.swap(next);
  }
  for (auto& p : cur)
    if (!p.empty()) out->push_back(std::move(p));
}

}  // namespace ghostline::engine::tokenizer_detail
