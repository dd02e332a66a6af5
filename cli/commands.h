// One function per subcommand; main() only dispatches. Each takes the arguments after its name
// and returns the process exit code (0 ok, 1 failure, 2 bad usage).
#pragma once

#include <string>
#include <vector>

namespace ghostline::cli {

using Argv = std::vector<std::string>;

int cmd_lsp(const Argv& args);         // cmd_lsp.cpp
int cmd_complete(const Argv& args);    // cmd_complete.cpp
int cmd_context(const Argv& args);     // cmd_context.cpp
int cmd_tokenize(const Argv& args);    // cmd_tokenize.cpp
int cmd_detokenize(const Argv& args);  // cmd_tokenize.cpp
int cmd_logits(const Argv& args);      // cmd_model.cpp
int cmd_info(const Argv& args);        // cmd_model.cpp
int cmd_generate(const Argv& args);    // cmd_generate.cpp

// The embedded default model directory: $GHOSTLINE_MODEL, else models/<default> next to the
// source tree the binary was built from, else next to the installed binary.
std::string default_model_dir();

}  // namespace ghostline::cli
