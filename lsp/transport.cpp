// Transport: Asio streams and the read loop (see transport.h).
#include "lsp/transport.h"

#include <unistd.h>

#include <boost/asio.hpp>

#include "lsp/frame_reader.h"

namespace ghostline::lsp {
namespace asio = boost::asio;
namespace {

// stdin and stdout as Asio descriptors (duplicated, so closing them leaves fds 0 and 1 alone).
class StdioStream final : public Stream {
 public:
  StdioStream() : in_(io_), out_(io_) {}
  Expected<void> open() {
    boost::system::error_code ec;
    in_.assign(::dup(STDIN_FILENO), ec);
    if (!ec) out_.assign(::dup(STDOUT_FILENO), ec);
    if (ec) return make_error(ErrorCode::Io, "cannot use stdin/stdout: " + ec.message());
    return ok();
  }
  Expected<size_t> read_some(char* data, size_t size) override {
    boost::system::error_code ec;
    size_t n = in_.read_some(asio::buffer(data, size), ec);
    if (ec == asio::error::eof) return size_t{0};
    if (ec) return make_error(ErrorCode::Io, "reading stdin: " + ec.message());
    return n;
  }
  Expected<void> write_all(std::string_view data) override {
    boost::system::error_code ec;
    asio::write(out_, asio::buffer(data.data(), data.size()), ec);
    if (ec) return make_error(ErrorCode::Io, "writing stdout: " + ec.message());
    return ok();
  }

 private:
  asio::io_context io_;
  asio::posix::stream_descriptor in_, out_;
};

class TcpStream final : public Stream {
 public:
  TcpStream() : socket_(io_) {}
  asio::io_context& io() { return io_; }
  asio::ip::tcp::socket& socket() { return socket_; }
  Expected<size_t> read_some(char* data, size_t size) override {
    boost::system::error_code ec;
    size_t n = socket_.read_some(asio::buffer(data, size), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) return size_t{0};
    if (ec) return make_error(ErrorCode::Io, "reading the socket: " + ec.message());
    return n;
  }
  Expected<void> write_all(std::string_view data) override {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(data.data(), data.size()), ec);
    if (ec) return make_error(ErrorCode::Io, "writing the socket: " + ec.message());
    return ok();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

}  // namespace

Expected<std::unique_ptr<Stream>> open_stdio() {
  auto s = std::make_unique<StdioStream>();
  if (auto r = s->open(); !r) return r.error();
  return std::unique_ptr<Stream>(std::move(s));
}

Expected<std::pair<std::string, int>> parse_listen_address(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return make_error(ErrorCode::InvalidArgument, "--listen wants HOST:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return make_error(ErrorCode::InvalidArgument, "--listen: bad port in '" + text + "'");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return make_error(ErrorCode::InvalidArgument, "--listen: port out of range in '" + text + "'");
  return std::make_pair(host, port);
}

Expected<std::unique_ptr<Stream>> accept_tcp(const std::string& host, int port, std::function<void(int)> on_listening) {
  auto s = std::make_unique<TcpStream>();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error(ErrorCode::InvalidArgument, "--listen: '" + host + "' is not an IP address: " + ec.message());
  asio::ip::tcp::acceptor acceptor(s->io());
  asio::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(1, ec);
  if (ec) return make_error(ErrorCode::Io, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  if (on_listening) on_listening(acceptor.local_endpoint().port());
  acceptor.accept(s->socket(), ec);
  if (ec) return make_error(ErrorCode::Io, "accepting a connection: " + ec.message());
  s->socket().set_option(asio::ip::tcp::no_delay(true), ec);
  return std::unique_ptr<Stream>(std::move(s));
}

int serve(Stream& stream, LspServer& server) {
  FrameReader reader;
  std::string buffer(64 << 10, '\0');
  while (!server.exited()) {
    auto n = stream.read_some(buffer.data(), buffer.size());
    if (!n || *n == 0) break;  // end of stream or a read error: the client is gone
    reader.feed(std::string_view(buffer.data(), *n));
    while (!server.exited()) {
      auto message = reader.next();
      if (!message) break;
      if (*message) server.receive(**message);
      else server.frame_error(message->error());
    }
  }
  return server.exit_code_if_exited();
}

}  // namespace ghostline::lsp
