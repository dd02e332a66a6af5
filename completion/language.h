// Languages the completion layer parses, and how an editor's languageId or a file name maps to one.
// Plain text is the fallback: no tree, line-based windows only.
#pragma once

#include <string_view>

struct TSLanguage;

namespace ghostline::completion {

enum class Language { PlainText, Python, C, Cpp, JavaScript, TypeScript, Tsx, Rust, Go, Java };

const char* language_name(Language language);  // "python", "cpp", ..., "plaintext"

// languageId wins when it names a known language; otherwise the path's extension decides.
Language language_from(std::string_view language_id, std::string_view path);

// The tree-sitter grammar, or nullptr for PlainText.
const TSLanguage* tree_sitter_language(Language language);

// Python-like languages end blocks by indentation; the rest by brackets.
inline bool uses_indentation(Language l) { return l == Language::Python; }

// The line-comment leader used to render file headers in prompts ("#", "//").
const char* line_comment(Language language);

}  // namespace ghostline::completion
