// TextStream: one request's generated text, decoded token by token, with stop strings.
//
// push(id) decodes the token through the tokenizer's streaming decoder (complete UTF-8
// characters only) and returns the text that may be shown now: text that could still turn out
// to be the start of a stop string is held back until it cannot. When a stop string appears,
// the text is cut just before it and stopped() turns true. flush() returns what was held back
// (at the end of a request that did not stop), incomplete characters included. Without a tokenizer the text stays empty.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ghostline::engine {
class Tokenizer;
}

namespace ghostline::engine::runtime {

class TextStream {
 public:
  TextStream(std::shared_ptr<const Tokenizer> tokenizer, std::vector<std::string> stop);
  ~TextStream();
  TextStream(TextStream&&) noexcept;
  TextStream& operator=(TextStream&&) noexcept;

  std::string push(int32_t id);
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  struct Decoder;
  std::unique_ptr<Decoder> decoder_;
  std::vector<std::string> stop_;
  std::string text_;      // all decoded text so far (cut at a stop string)
  size_t emitted_ = 0;    // bytes of text_ handed out
  bool stopped_ = false;
};

// The longest suffix of text that is a proper prefix of one of the stop strings (bytes).
size_t held_back_for_stop(const std::string& text, const std::vector<std::string>& stop);

}  // namespace ghostline::engine::runtime
