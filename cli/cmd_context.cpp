// `ghostline context FILE:LINE:COL [--json] [--model DIR] [--no-neighbors]`: the completion
// context for a cursor — language, mode, prefix, suffix, snippets and the assembled FIM prompt for
// the model's family. Files beside FILE with the same extension stand in for other open documents.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/file_cursor.h"
#include "completion/context.h"
#include "completion/fim.h"
#include "engine/tokenizer/tokenizer.h"

namespace ghostline::cli {

namespace {
namespace fs = std::filesystem;
using namespace ghostline::completion;

std::vector<Snapshot> neighbors(const std::string& path) {
  std::vector<Snapshot> out;
  std::error_code ec;
  fs::path p(path);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (out.size() >= 20) break;
    if (!e.is_regular_file(ec) || e.path().extension() != p.extension() || fs::equivalent(e.path(), p, ec)) continue;
    if (e.file_size(ec) > 256 * 1024) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    Language lang = language_from("", e.path().string());
    out.push_back(parse_snapshot(e.path().string(), lang, ss.str()));
  }
  return out;
}
}  // namespace

int cmd_context(const Argv& argv) {
  auto args = Args::parse(argv, {"model"}, {"json", "no-neighbors"});
  if (!args) return fail("context", args.error());
  if (args->positional().size() != 1)
    return fail("context", make_error(ErrorCode::InvalidArgument, "usage: ghostline context FILE:LINE:COL [--json] [--model DIR]"));
  auto fc = read_file_cursor(args->positional()[0]);
  if (!fc) return fail("context", fc.error());
  std::string model = args->get_or("model", default_model_dir());
  auto tmpl = detect_fim_template(model);
  if (!tmpl) return fail("context", tmpl.error());
  auto tok = engine::Tokenizer::from_model_dir(model);

  ContextOptions options;
  if (tok) {
    auto t = *tok;
    options.count_tokens = [t](std::string_view s) { return t->encode(std::string(s)).size(); };
  }
  Snapshot snap = parse_snapshot(fc->path, language_from("", fc->path), fc->text);
  std::vector<Snapshot> others = args->has("no-neighbors") ? std::vector<Snapshot>{} : neighbors(fc->path);
  Context c = build_context(snap, fc->offset, others, options);
  std::string prompt = tmpl->render(c);

  if (args->has("json")) {
    nlohmann::ordered_json j;
    j["language"] = language_name(c.language);
    j["mode"] = mode_name(c.mode);
    j["prefix"] = c.prefix;
    j["suffix"] = c.suffix;
    j["snippets"] = nlohmann::ordered_json::array();
    for (const auto& s : c.snippets) j["snippets"].push_back({{"path", s.path}, {"text", s.text}});
    j["prompt"] = prompt;
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::cout << "language: " << language_name(c.language) << "\nmode: " << mode_name(c.mode)
            << "\nfim: " << fim_family_name(tmpl->family) << " " << (tmpl->preferred_order() == FimOrder::SPM ? "spm" : "psm")
            << "\n--- prefix ---\n" << c.prefix << "\n--- suffix ---\n" << c.suffix << "\n";
  for (const auto& s : c.snippets) std::cout << "--- snippet " << s.path << " ---\n" << s.text << "\n";
  std::cout << "--- prompt ---\n" << prompt << "\n";
  return 0;
}

}  // namespace ghostline::cli
