// Post-processing of raw model text into a suggestion: stop at the end of the cursor's block
// (indentation for Python, bracket balance for C-like languages), stop at the end of the line in
// single-line mode, drop what repeats the suffix, trim trailing whitespace, and reject a
// suggestion that makes the file's parse worse. `complete_at` is the incremental form for
// streaming: once it returns a position, more tokens cannot change the result, so generation stops.
//
// Thread-safety: pure functions over immutable values.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "completion/context.h"
#include "completion/document.h"

namespace ghostline::completion {

// Where the suggestion ends for good within `partial` (a prefix of the model's output), or
// nullopt while more text could still belong to it.
std::optional<size_t> complete_at(const Context& context, std::string_view partial);
inline bool is_complete(const Context& context, std::string_view partial) { return complete_at(context, partial).has_value(); }

// The final suggestion (possibly empty). `snapshot` is the document the context was built from.
std::string postprocess(const Snapshot& snapshot, const Context& context, std::string_view raw);

}  // namespace ghostline::completion
