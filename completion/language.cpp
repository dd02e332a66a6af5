// Maps languageIds and file extensions to Language and Language to its tree-sitter grammar.
#include "completion/language.h"

#include <string>

extern "C" {
const TSLanguage* tree_sitter_python();
const TSLanguage* tree_sitter_c();
const TSLanguage* tree_sitter_cpp();
const TSLanguage* tree_sitter_javascript();
const TSLanguage* tree_sitter_typescript();
const TSLanguage* tree_sitter_tsx();
const TSLanguage* tree_sitter_rust();
const TSLanguage* tree_sitter_go();
const TSLanguage* tree_sitter_java();
}

namespace ghostline::completion {

const char* language_name(Language language) {
  switch (language) {
    case Language::Python: return "python";
    case Language::C: return "c";
    case Language::Cpp: return "cpp";
    case Language::JavaScript: return "javascript";
    case Language::TypeScript: return "typescript";
    case Language::Tsx: return "typescriptreact";
    case Language::Rust: return "rust";
    case Language::Go: return "go";
    case Language::Java: return "java";
    case Language::PlainText: break;
  }
  return "plaintext";
}

static Language from_id(std::string_view id) {
  if (id == "python") return Language::Python;
  if (id == "c") return Language::C;
  if (id == "cpp" || id == "cuda-cpp" || id == "objective-cpp") return Language::Cpp;
  if (id == "javascript" || id == "javascriptreact") return Language::JavaScript;
  if (id == "typescript") return Language::TypeScript;
  if (id == "typescriptreact" || id == "tsx") return Language::Tsx;
  if (id == "rust") return Language::Rust;
  if (id == "go") return Language::Go;
  if (id == "java") return Language::Java;
  return Language::PlainText;
}

static Language from_extension(std::string_view path) {
  auto slash = path.find_last_of('/');
  auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.find_last_of('.');
  if (dot == std::string_view::npos) return Language::PlainText;
  std::string ext(name.substr(dot + 1));
  for (auto& ch : ext) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  if (ext == "py" || ext == "pyi") return Language::Python;
  if (ext == "c") return Language::C;
  if (ext == "h" || ext == "cc" || ext == "cpp" || ext == "cxx" || ext == "hpp" || ext == "hh" || ext == "hxx" ||
      ext == "cu" || ext == "cuh" || ext == "inl")
    return Language::Cpp;
  if (ext == "js" || ext == "mjs" || ext == "cjs" || ext == "jsx") return Language::JavaScript;
  if (ext == "ts" || ext == "mts" || ext == "cts") return Language::TypeScript;
  if (ext == "tsx") return Language::Tsx;
  if (ext == "rs") return Language::Rust;
  if (ext == "go") return Language::Go;
  if (ext == "java") return Language::Java;
  return Language::PlainText;
}

Language language_from(std::string_view language_id, std::string_view path) {
  Language l = from_id(language_id);
  return l != Language::PlainText ? l : from_extension(path);
}

const TSLanguage* tree_sitter_language(Language language) {
  switch (language) {
    case Language::Python: return tree_sitter_python();
    case Language::C: return tree_sitter_c();
    case Language::Cpp: return tree_sitter_cpp();
    case Language::JavaScript: return tree_sitter_javascript();
    case Language::TypeScript: return tree_sitter_typescript();
    case Language::Tsx: return tree_sitter_tsx();
    case Language::Rust: return tree_sitter_rust();
    case Language::Go: return tree_sitter_go();
    case Language::Java: return tree_sitter_java();
    case Language::PlainText: break;
  }
  return nullptr;
}

const char* line_comment(Language language) {
  return language == Language::Python || language == Language::PlainText ? "#" : "//";
}

}  // namespace ghostline::completion
