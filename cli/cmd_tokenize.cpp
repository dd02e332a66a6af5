// `ghostline tokenize` and `ghostline detokenize`: text on stdin → a JSON array of ids, and back.
// The tokenizer comes from --tokenizer FILE (a tokenizer.json), --model DIR, or the default model.
// --model dummy:CONFIG.json has no tokenizer and is refused with a clear error.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "engine/tokenizer/tokenizer.h"

namespace ghostline::cli {

namespace {
using engine::Tokenizer;

Expected<std::shared_ptr<const Tokenizer>> load_tokenizer(const Args& args) {
  if (auto file = args.get("tokenizer")) {
    if (args.has("model"))
      return make_error(ErrorCode::InvalidArgument, "give either --model or --tokenizer, not both");
    return Tokenizer::from_file(*file);
  }
  std::string dir = args.get_or("model", default_model_dir());
  if (dir.rfind("dummy:", 0) == 0)
    return make_error(ErrorCode::InvalidArgument, "--model " + dir + " has no tokenizer; use --tokenizer FILE");
  return Tokenizer::from_model_dir(dir);
}

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}
}  // namespace

int cmd_tokenize(const Argv& argv) {
  auto args = Args::parse(argv, {"model", "tokenizer"}, {});
  if (!args) return fail("tokenize", args.error());
  auto tok = load_tokenizer(*args);
  if (!tok) return fail("tokenize", tok.error());
  nlohmann::json ids = (*tok)->encode(read_stdin());
  std::cout << ids.dump() << "\n";
  return 0;
}

int cmd_detokenize(const Argv& argv) {
  auto args = Args::parse(argv, {"model", "tokenizer"}, {});
  if (!args) return fail("detokenize", args.error());
  auto tok = load_tokenizer(*args);
  if (!tok) return fail("detokenize", tok.error());
  auto j = nlohmann::json::parse(read_stdin(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array())
    return fail("detokenize", make_error(ErrorCode::InvalidArgument, "stdin is not a JSON array of token ids"));
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= (*tok)->vocab_size())
      return fail("detokenize", make_error(ErrorCode::InvalidArgument,
                                           "not a token id of this tokenizer: " + v.dump()));
    ids.push_back(v.get<int32_t>());
  }
  std::string text = (*tok)->decode(ids);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace ghostline::cli
