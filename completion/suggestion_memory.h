// What the service remembers between requests so that many keystrokes need no model call:
//
//  - TypingThrough: the last suggestion shown per document. While the user types characters that
//    match its start (and nothing else in the document changed), the rest is the answer.
//  - SuggestionCache: recent suggestions keyed by their exact prompt and sampling settings. With
//    greedy decoding the same prompt gives the same text, so a hit (after an undo, or the same
//    edit in two places) is answered without the engine.
//
// Both are thread-safe and bounded.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace ghostline::completion {

class TypingThrough {
 public:
  // Remembers `suggestion` shown at byte `cursor` of `text` (the document as it was then).
  void remember(const std::string& uri, std::string text, size_t cursor, std::string suggestion);
  void forget(const std::string& uri);

  // If `text` is the remembered document with the first k bytes of the suggestion typed at the
  // remembered cursor (now at `cursor` = old cursor + k) and nothing else changed, returns the
  // rest of the suggestion (non-empty); otherwise nullopt.
  std::optional<std::string> remainder(const std::string& uri, const std::string& text, size_t cursor) const;
  // True when `text` is the remembered document with some or all of the suggestion typed (so
  // work that is completing the suggestion is still wanted).
  bool typed_all_or_part(const std::string& uri, const std::string& text, size_t cursor) const;

 private:
  // The untyped rest (maybe empty) when `text` is the remembered one with a prefix typed.
  std::optional<std::string> typed_part(const std::string& uri, const std::string& text, size_t cursor) const;
  struct Shown {
    std::string text;
    size_t cursor = 0;
    std::string suggestion;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Shown> shown_;
};

class SuggestionCache {
 public:
  explicit SuggestionCache(size_t capacity = 512) : capacity_(capacity) {}

  std::optional<std::string> get(const std::string& key);
  void put(const std::string& key, std::string suggestion);
  size_t size() const;

  // A compact key for a prompt and the settings that change the output.
  static std::string key(const std::string& model, const std::string& prompt, int max_tokens, const std::string& mode);

 private:
  using Entry = std::pair<std::string, std::string>;  // key, suggestion
  mutable std::mutex mu_;
  size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace ghostline::completion
