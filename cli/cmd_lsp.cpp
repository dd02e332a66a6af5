// Placeholder: this subcommand lands with its part (see the issues).
#include <cstdio>
#include "cli/commands.h"
namespace ghostline::cli {
int cmd_lsp(const Argv&) { std::fprintf(stderr, "ghostline: 'lsp' is not built yet\n"); return 1; }
}  // namespace ghostline::cli
