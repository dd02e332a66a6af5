// TextStream: streaming detokenization with stop strings held back until decided.
#include "engine/runtime/text_stream.h"

#include <algorithm>

#ifdef GHOSTLINE_HAVE_TOKENIZER
#include "engine/tokenizer/tokenizer.h"
#endif

namespace ghostline::engine::runtime {

#ifdef GHOSTLINE_HAVE_TOKENIZER
struct TextStream::Decoder {
  explicit Decoder(std::shared_ptr<const Tokenizer> t) : stream(std::move(t)) {}
  Tokenizer::StreamDecoder stream;
  std::string push(int32_t id) { return stream.push(id); }
  std::string flush() { return stream.flush(); }
};
#else
struct TextStream::Decoder {
  explicit Decoder(std::shared_ptr<const Tokenizer>) {}
  std::string push(int32_t) { return {}; }
  std::string flush() { return {}; }
};
#endif

TextStream::TextStream(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop)
    : decoder_(tokenizer ? std::make_unique<Decoder>(std::move(tokenizer)) : nullptr), stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}
TextStream::~TextStream() = default;
TextStream::TextStream(TextStream&&) noexcept = default;
TextStream& TextStream::operator=(TextStream&&) noexcept = default;

size_t held_back_for_stop(const std::string& text, const std::vector<std::string>& stop) {
  size_t held = 0;
  for (const auto& s : stop)
    for (size_t len = std::min(s.size() - 1, text.size()); len > held; --len)
      if (text.compare(text.size() - len, len, s, 0, len) == 0) { held = len; break; }
  return held;
}

std::string TextStream::push(int32_t id) {
  if (stopped_ || !decoder_) return {};
  const size_t before = text_.size();
  text_ += decoder_->push(id);
  if (!stop_.empty()) {
    // Only a match that ends in the new text is new; search from where one could begin.
    size_t longest = 0;
    for (const auto& s : stop_) longest = std::max(longest, s.size());
    size_t from = before >= longest ? before - longest + 1 : 0;
    size_t cut = std::string::npos;
    for (const auto& s : stop_) cut = std::min(cut, text_.find(s, from));
    if (cut != std::string::npos) {
      text_.resize(std::max(cut, emitted_));
      stopped_ = true;
      return flush();
    }
  }
  size_t safe = text_.size() - held_back_for_stop(text_, stop_);
  if (safe <= emitted_) return {};
  std::string out = text_.substr(emitted_, safe - emitted_);
  emitted_ = safe;
  return out;
}

std::string TextStream::flush() {
  if (!stopped_ && decoder_) text_ += decoder_->flush();
  std::string out = text_.substr(std::min(emitted_, text_.size()));
  emitted_ = text_.size();
  return out;
}

}  // namespace ghostline::engine::runtime
