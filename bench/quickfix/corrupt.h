// Synthetic quick-fix cases: one syntax error put into a real, clean source file — a colon or a
// semicolon removed, a closing bracket removed, two letters of a keyword swapped, a Python line
// indented further — kept only when it breaks the parse. The expected fix is the original file.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "completion/document.h"

namespace ghostline::bench {

struct CorruptedCase {
  std::string name;        // file:line:category
  std::string language;    // py, cpp, js
  std::string category;    // missing_colon, missing_semicolon, unbalanced_bracket, misspelled_keyword, bad_indentation
  std::string broken;
  std::string original;
};

// Up to `per_category` cases of each applicable category from one clean file (none when the file
// does not parse clean). Deterministic for a given rng state.
std::vector<CorruptedCase> corrupt_file(const std::string& path, const completion::Snapshot& clean, size_t per_category,
                                        std::mt19937& rng);

}  // namespace ghostline::bench
