// UTF-8 helpers the tokenizer needs: validation with U+FFFD replacement, code point decoding,
// Unicode normalization (utf8proc), whitespace and word-character tests, and the GPT-2 byte-level
// alphabet (each byte ↔ one printable code point).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ghostline::engine::tokenizer_detail {

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);
// `s` with every ill-formed sequence replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view s);

// Decodes the code point at s[i] (valid UTF-8 assumed) and its byte length.
char32_t decode_at(std::string_view s, size_t i, size_t* len);
void append_utf8(std::string& out, char32_t cp);
// Byte length of a UTF-8 sequence from its lead byte (1 for stray bytes).
size_t utf8_len(unsigned char lead);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);
// Rust's char::to_lowercase applied to each character, as the Lowercase normalizer does: the
// simple mapping, except U+0130 (İ), which becomes two characters (i + U+0307); no context rules
// (a final sigma stays σ).
std::string to_lower(std::string_view s);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_unicode_whitespace(char32_t c);
// `\w` of Rust's regex crate (the Unicode word characters of UTS #18): Alphabetic, marks,
// decimal digits, connector punctuation, and the join controls U+200C/U+200D.
bool is_regex_word_char(char32_t c);

// The byte-level alphabet: the code point standing for each byte, and the reverse (-1: none).
char32_t byte_to_char(uint8_t b);
int char_to_byte(char32_t c);
// A byte-level spelling (e.g. "Ġthe") turned back into its bytes; false when a character is not
// in the alphabet.
bool byte_level_decode(std::string_view spelled, std::string* out);
std::string byte_level_encode(std::string_view bytes);

}  // namespace ghostline::engine::tokenizer_detail
