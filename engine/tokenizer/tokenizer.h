// The tokenizer: Hugging Face `tokenizer.json` (byte-level BPE and its pipeline) read into one
// immutable object that turns text into token ids and back, giving exactly the ids that Hugging
// Face `tokenizers` gives for the same file.
//
// Pipeline of encode(): added tokens are cut out of the text first (never split; non-normalized
// ones on the raw text, normalized ones after normalization), every other segment is normalized
// (NFC, ...), pre-tokenized (Split with the model's regexes through PCRE2-JIT, ByteLevel, Digits)
// and each pre-token word is run through the BPE model (results cached per word).
//
// Like `tokenizers`, an added token's id comes from its content, not from the "id" written in
// tokenizer.json: a content in the model's vocabulary keeps that id, a new one is numbered from the
// vocabulary size in file order (the two agree in real tokenizer files).
//
// Known limit: Unicode tables. NFC/NFKC come from utf8proc (Unicode 15), `tokenizers` uses older
// normalization tables and newer case and regex tables, so characters assigned in recent Unicode
// versions (none in the test corpus) can normalize or split differently.
//
// Thread-safety: a Tokenizer is immutable after loading apart from its internal word cache, which is
// guarded; any number of threads may call its const methods at once. A StreamDecoder is one
// stream's state and belongs to one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/expected.h"

namespace ghostline::engine {

namespace tokenizer_detail {
struct Impl;
}

class Tokenizer {
 public:
  // Reads a tokenizer.json. Errors: NotFound (no file), InvalidArgument (malformed JSON, missing
  // fields, a bad regex), Unsupported (a model, normalizer, pre-tokenizer or decoder type this
  // build does not implement) — the message names the file and the part that is wrong.
  static Expected<std::shared_ptr<const Tokenizer>> from_file(const std::string& tokenizer_json);

  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json for the BOS/EOS tokens
  // (a string or an {"content": ...} object each) and add_bos_token. Without them, a
  // TemplateProcessing post-processor that starts with a special token gives bos_id() and
  // add_bos() == true (what `tokenizers` does with add_special_tokens=True); from_file() does
  // the same.
  static Expected<std::shared_ptr<const Tokenizer>> from_model_dir(const std::string& dir);

  // Text → ids. Added/special tokens appearing in the text are matched whole; no BOS is added (the
  // caller prepends bos_id() when add_bos() is true). Invalid UTF-8 bytes are replaced by U+FFFD
  // first (Hugging Face only takes valid strings).
  std::vector<int32_t> encode(std::string_view text) const;

  // Ids → the exact bytes (special tokens included as their text). Unknown ids are skipped.
  std::string decode(const std::vector<int32_t>& ids) const;

  // The decoded bytes of one token ("" for an id out of range). May be an incomplete UTF-8 piece.
  const std::string& token_bytes(int32_t id) const;

  // The id of a token by its vocabulary spelling (e.g. "<｜fim▁begin｜>", or "Ġthe").
  std::optional<int32_t> token_id(std::string_view token) const;
  // The vocabulary spelling of an id (e.g. "Ġthe"); "" when out of range.
  const std::string& token_text(int32_t id) const;
  // True for added tokens marked "special" in tokenizer.json.
  bool is_special(int32_t id) const;

  // One past the largest id (vocabulary and added tokens).
  int32_t vocab_size() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  bool add_bos() const;

  // Turns a stream of ids into text that only ever contains complete UTF-8 characters: bytes of a
  // character split across tokens are held back until the character is complete. Bytes that can
  // never start or continue a valid character are passed through as they are.
  class StreamDecoder {
   public:
    explicit StreamDecoder(std::shared_ptr<const Tokenizer> tokenizer) : tok_(std::move(tokenizer)) {}
    std::string push(int32_t id);
    std::string flush();  // whatever is held back, complete or not

   private:
    std::shared_ptr<const Tokenizer> tok_;
    std::string pending_;
  };

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_detail::Impl> impl);
  std::unique_ptr<tokenizer_detail::Impl> impl_;
};

}  // namespace ghostline::engine
