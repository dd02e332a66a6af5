// The ghostline command: dispatches to one function per subcommand.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const ghostline::cli::Argv&);
  const char* usage;
};

const Command kCommands[] = {
    {"lsp", ghostline::cli::cmd_lsp, "lsp [--listen HOST:PORT] [--model DIR|--endpoint URL] [--device auto|cpu|cuda[:N]]"},
    {"complete", ghostline::cli::cmd_complete, "complete FILE:LINE:COL [--model DIR] [--max-tokens N] [--json]"},
    {"context", ghostline::cli::cmd_context, "context FILE:LINE:COL [--model DIR] [--json]"},
    {"tokenize", ghostline::cli::cmd_tokenize, "tokenize (--model DIR|--tokenizer FILE)  < text"},
    {"detokenize", ghostline::cli::cmd_detokenize, "detokenize (--model DIR|--tokenizer FILE)  < [ids]"},
    {"logits", ghostline::cli::cmd_logits, "logits --model DIR --ids 1,2,3 [--device D]"},
    {"generate", ghostline::cli::cmd_generate, "generate --model DIR --prompt TEXT [--max-tokens N] [--temperature T] [--speculation on|off] [--json]"},
    {"info", ghostline::cli::cmd_info, "info --model DIR"},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "usage: ghostline <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  ghostline %s\n", c.usage);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("ghostline 0.1.0\n");
    return 0;
  }
  ghostline::cli::Argv rest(argv + 2, argv + argc);
  for (const auto& c : kCommands)
    if (!std::strcmp(argv[1], c.name)) return c.run(rest);
  std::fprintf(stderr, "ghostline: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
