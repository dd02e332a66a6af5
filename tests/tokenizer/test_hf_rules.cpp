// Rules of Hugging Face `tokenizers` that the corpus references only touch in passing, checked on
// small hand-made byte-level tokenizers: which id an added token gets, how rstrip / lstrip /
// single_word decide a match, and the Lowercase normalizer's one two-character mapping. Every
// expected id list was produced by `tokenizers` 0.23.2 (its Node binding, same Rust core as the
// Python one that makes refs/) from the tokenizer.json that byte_level_tokenizer() writes.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/tokenizer.h"

using ghostline::engine::Tokenizer;
using Ids = std::vector<int32_t>;
using nlohmann::json;

namespace {

// The GPT-2 byte alphabet: printable bytes stand for themselves, the others for 256, 257, ...
std::string byte_char(int b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int next = 256;
    for (int v = 0; v < 256; ++v) {
      bool printable = (v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE;
      int cp = printable ? v : next++;
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      t[v] = s;
    }
    return t;
  }();
  return table[b];
}

// A byte-level BPE whose id for each single byte is the byte itself, plus "ab" (256) from one
// merge: 257 vocabulary entries. `added` becomes added_tokens; `normalizer` may be null.
std::shared_ptr<const Tokenizer> byte_level_tokenizer(const std::string& name, const json& added,
                                                      const json& normalizer = nullptr) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  vocab["ab"] = 256;
  json doc = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", normalizer},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                 {"ignore_merges", false}, {"vocab", vocab}, {"merges", json::array({"a b"})}}},
  };
  auto dir = std::filesystem::temp_directory_path() / "ghostline_tokenizer_test";
  std::filesystem::create_directories(dir);
  auto path = (dir / (name + ".json")).string();
  std::ofstream(path, std::ios::binary) << doc.dump();
  auto r = Tokenizer::from_file(path);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
  return *r;
}

json added(int id, const std::string& content, bool special = false, bool lstrip = false, bool rstrip = false,
           bool single_word = false, bool normalized = false) {
  return {{"id", id}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", special}};
}

}  // namespace

TEST_CASE("an added token's id comes from its content, not from the id written in tokenizer.json") {
  // "ab" is in the vocabulary: it keeps 256. New contents count from the vocabulary size (257),
  // in file order, whatever ids the file gives them.
  auto tok = byte_level_tokenizer("added_ids", json::array({added(900, "ab"), added(901, "<new>", true),
                                                            added(5, "<two>")}));
  CHECK(tok->token_id("ab") == 256);
  CHECK(tok->token_id("<new>") == 257);
  CHECK(tok->token_id("<two>") == 258);
  CHECK(tok->token_text(257) == "<new>");
  CHECK(tok->token_text(900).empty());
  CHECK(tok->token_text(5) == byte_char(5));  // still the byte's own token
  CHECK(tok->is_special(257));
  CHECK(!tok->is_special(258));
  CHECK(tok->vocab_size() == 259);
  CHECK(tok->encode("x<new>y<two>") == Ids{120, 257, 121, 258});
  CHECK(tok->decode({120, 257, 121, 258}) == "x<new>y<two>");
}

TEST_CASE("rstrip whitespace can still start the next added token; lstrip stops at the previous match") {
  auto tok = byte_level_tokenizer("strip_overlap", json::array({added(0, "TODO", false, true, true), added(0, "  "),
                                                                added(0, "<L>", false, true)}));
  // TODO = 257 takes " " and "  " around it, yet the search resumes right after "TODO", where
  // "  " (258) matches again.
  CHECK(tok->encode("a TODO  ok") == Ids{97, 257, 258, 111, 107});
  CHECK(tok->encode("TODO ok") == Ids{257, 111, 107});
  CHECK(tok->encode("  TODO  TODO  ") == Ids{258, 257, 258, 257, 258});
  CHECK(tok->encode("<L><L>  <L>") == Ids{259, 259, 258, 259});
  CHECK(tok->encode("x \t<L>") == Ids{120, 259});
}

TEST_CASE("single_word: a word character is what Rust's regex calls \\w") {
  auto tok = byte_level_tokenizer("single_word", json::array({added(0, "qz", false, false, false, true)}));
  const int32_t qz = 257;
  auto matched = [&](const std::string& text) {
    auto ids = tok->encode(text);
    return std::find(ids.begin(), ids.end(), qz) != ids.end();
  };
  CHECK(matched("qz"));
  CHECK(matched("(qz,"));
  CHECK(matched("-qz-"));
  CHECK(matched("\xC2\xB2qz"));          // ² is a number but not a decimal digit
  CHECK(matched("\xC2\xBDqz"));          // ½
  CHECK(matched("\xE2\x91\xA0qz"));      // ①
  CHECK(matched("\xF0\x9F\x98\x80qz"));  // 😀
  CHECK(!matched("xqz"));
  CHECK(!matched("qz_"));
  CHECK(!matched("1qz"));
  CHECK(!matched("e\xCC\x81qz"));        // a combining mark
  CHECK(!matched("\xE2\x80\x8Dqz"));     // zero width joiner
  CHECK(!matched("\xE2\x80\xBFqz"));     // ‿ connector punctuation
  CHECK(!matched("qz\xE2\x92\xB6"));     // Ⓐ, alphabetic though a symbol
  CHECK(!matched("qz\xE2\x85\xA0"));     // Ⅰ, a letter number
  CHECK(!matched("\xD9\xA3qz"));         // Arabic-Indic digit three
  CHECK(tok->encode("\xC2\xB2qz") == Ids{194, 178, qz});
  CHECK(tok->encode("e\xCC\x81qz") == Ids{101, 204, 129, 113, 122});
}

TEST_CASE("the same content added twice: one id, the later flags") {
  // The second "dup" is single_word; its rules are the ones matches of 257 follow.
  auto tok = byte_level_tokenizer("duplicate", json::array({added(0, "dup"), added(0, "dup", false, false, false, true)}));
  CHECK(tok->token_id("dup") == 257);
  CHECK(tok->vocab_size() == 258);
  CHECK(tok->encode("dup") == Ids{257});
  CHECK(tok->encode("xdup") == Ids{120, 100, 117, 112});
}

TEST_CASE("Lowercase maps each character as Rust's char::to_lowercase (İ becomes two)") {
  auto tok = byte_level_tokenizer("lowercase", json::array(), {{"type", "Lowercase"}});
  CHECK(tok->encode("\xC4\xB0") == Ids{105, 204, 135});          // İ → i + U+0307
  CHECK(tok->encode("\xCE\xA3\xCE\x9F\xCE\xA3") == Ids{207, 131, 206, 191, 207, 131});  // ΣΟΣ → σοσ, no final ς
  CHECK(tok->encode("AB") == Ids{256});
}
