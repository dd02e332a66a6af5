// Placeholder: this subcommand lands with its part (see the issues).
#include <cstdio>
#include "cli/commands.h"
namespace ghostline::cli {
int cmd_logits(const Argv&) { std::fprintf(stderr, "ghostline: 'logits' is not built yet\n"); return 1; }
int cmd_info(const Argv&) { std::fprintf(stderr, "ghostline: 'info' is not built yet\n"); return 1; }
}  // namespace ghostline::cli
