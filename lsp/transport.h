// Transport: byte streams on Boost.Asio (stdio, or one TCP connection accepted on
// `--listen HOST:PORT`) and the read loop that turns them into framed messages for the server.
//
// Reading happens on the thread that calls serve(); writes come from any thread through the
// server's Outbox, which serialises them. Neither ever waits for model work.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/base/expected.h"
#include "lsp/server.h"

namespace ghostline::lsp {

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads at least one byte; 0 means end of stream. Blocking.
  virtual Expected<size_t> read_some(char* data, size_t size) = 0;
  // Writes everything or fails (the peer is gone).
  virtual Expected<void> write_all(std::string_view data) = 0;
};

// The process's stdin/stdout.
Expected<std::unique_ptr<Stream>> open_stdio();

// Listens on host:port (port 0 picks one), calls `on_listening` with the bound port, and
// accepts one connection.
Expected<std::unique_ptr<Stream>> accept_tcp(const std::string& host, int port, std::function<void(int port)> on_listening);

// Parses "HOST:PORT" (IPv6 hosts in brackets: "[::1]:9000").
Expected<std::pair<std::string, int>> parse_listen_address(const std::string& text);

// Reads frames from `stream` into the server until `exit` or the end of the stream.
// Returns the process exit code (0 after shutdown + exit, 1 otherwise).
int serve(Stream& stream, LspServer& server);

}  // namespace ghostline::lsp
