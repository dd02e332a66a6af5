// Placeholder: this subcommand lands with its part (see the issues).
#include <cstdio>
#include "cli/commands.h"
namespace ghostline::cli {
int cmd_tokenize(const Argv&) { std::fprintf(stderr, "ghostline: 'tokenize' is not built yet\n"); return 1; }
int cmd_detokenize(const Argv&) { std::fprintf(stderr, "ghostline: 'detokenize' is not built yet\n"); return 1; }
}  // namespace ghostline::cli
