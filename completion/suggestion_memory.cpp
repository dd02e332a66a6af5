// TypingThrough and SuggestionCache; see suggestion_memory.h.
#include "completion/suggestion_memory.h"

#include <functional>

namespace ghostline::completion {

void TypingThrough::remember(const std::string& uri, std::string text, size_t cursor, std::string suggestion) {
  std::lock_guard lock(mu_);
  if (suggestion.empty() || cursor > text.size()) {
    shown_.erase(uri);
    return;
  }
  shown_[uri] = Shown{std::move(text), cursor, std::move(suggestion)};
}

void TypingThrough::forget(const std::string& uri) {
  std::lock_guard lock(mu_);
  shown_.erase(uri);
}

std::optional<std::string> TypingThrough::remainder(const std::string& uri, const std::string& text, size_t cursor) const {
  auto rest = typed_part(uri, text, cursor);
  if (!rest || rest->empty()) return std::nullopt;  // nothing left: ask the model again
  return rest;
}

bool TypingThrough::typed_all_or_part(const std::string& uri, const std::string& text, size_t cursor) const {
  return typed_part(uri, text, cursor).has_value();
}

std::optional<std::string> TypingThrough::typed_part(const std::string& uri, const std::string& text, size_t cursor) const {
  std::lock_guard lock(mu_);
  auto it = shown_.find(uri);
  if (it == shown_.end()) return std::nullopt;
  const Shown& s = it->second;
  if (cursor < s.cursor) return std::nullopt;
  size_t typed = cursor - s.cursor;
  if (typed > s.suggestion.size()) return std::nullopt;
  if (text.size() != s.text.size() + typed || cursor > text.size()) return std::nullopt;
  // Before the old cursor unchanged, the typed bytes equal the suggestion's start, after unchanged.
  if (text.compare(0, s.cursor, s.text, 0, s.cursor) != 0) return std::nullopt;
  if (text.compare(s.cursor, typed, s.suggestion, 0, typed) != 0) return std::nullopt;
  if (text.compare(cursor, std::string::npos, s.text, s.cursor, std::string::npos) != 0) return std::nullopt;
  // Never split a UTF-8 character: the remainder must start at a character boundary.
  if (typed < s.suggestion.size() && (static_cast<unsigned char>(s.suggestion[typed]) & 0xC0) == 0x80) return std::nullopt;
  return s.suggestion.substr(typed);
}

std::optional<std::string> SuggestionCache::get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void SuggestionCache::put(const std::string& key, std::string suggestion) {
  std::lock_guard lock(mu_);
  if (capacity_ == 0) return;
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->second = std::move(suggestion);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(key, std::move(suggestion));
  index_[key] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

size_t SuggestionCache::size() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

std::string SuggestionCache::key(const std::string& model, const std::string& prompt, int max_tokens, const std::string& mode) {
  // The prompt itself is part of the key (not only its hash): a hash collision must never
  // answer with another context's suggestion. Prompts are bounded by the context budget.
  std::string k;
  k.reserve(model.size() + prompt.size() + mode.size() + 24);
  k += model;
  k += '\x1f';
  k += mode;
  k += '\x1f';
  k += std::to_string(max_tokens);
  k += '\x1f';
  k += prompt;
  return k;
}

}  // namespace ghostline::completion
