// `ghostline lsp`: builds the completion service from the options and serves the language
// server over stdio, or over one TCP connection with --listen HOST:PORT.
#include <csignal>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "completion/service.h"
#include "lsp/server.h"
#include "lsp/transport.h"

namespace ghostline::cli {

int cmd_lsp(const Argv& argv) {
  auto args = Args::parse(argv, {"listen", "model", "endpoint", "device"}, {"stdio"});
  if (!args) return fail("lsp", args.error());
  if (args->has("model") && args->has("endpoint"))
    return fail("lsp", make_error(ErrorCode::InvalidArgument, "--model and --endpoint exclude each other"));
  if (!args->positional().empty())
    return fail("lsp", make_error(ErrorCode::InvalidArgument, "unexpected argument '" + args->positional().front() + "'"));

  completion::Settings settings;
  settings.model = args->get_or("model", "");
  settings.endpoint = args->get_or("endpoint", "");
  settings.device = args->get_or("device", "auto");
  if (settings.model.empty() && settings.endpoint.empty()) settings.model = default_model_dir();

  // A client that disappears must end the session through a failed write, not a signal.
  std::signal(SIGPIPE, SIG_IGN);

  Expected<std::unique_ptr<lsp::Stream>> stream = make_error(ErrorCode::Internal, "no stream");
  if (auto listen = args->get("listen")) {
    auto address = lsp::parse_listen_address(*listen);
    if (!address) return fail("lsp", address.error());
    stream = lsp::accept_tcp(address->first, address->second, [&](int port) {
      std::fprintf(stderr, "ghostline lsp: listening on %s:%d\n", address->first.c_str(), port);
      std::fflush(stderr);
    });
  } else {
    stream = lsp::open_stdio();
  }
  if (!stream) return fail("lsp", stream.error());

  auto service = completion::make_service(settings);
  int code = 1;
  {
    lsp::Stream& s = **stream;
    auto server = lsp::LspServer::create(*service, [&s](std::string_view bytes) { return bool(s.write_all(bytes)); },
                                         lsp::ServerOptions{settings, lsp::LatencyPolicy::interactive(), "0.1.0"});
    code = lsp::serve(s, *server);
    server->close_output();
  }
  return code;
}

}  // namespace ghostline::cli
