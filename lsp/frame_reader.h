// FrameReader: the Content-Length framing of the base protocol, as a pure byte-in/message-out
// state machine with no I/O, so that the transport, the unit tests and the fuzzer share it.
//
// A frame is `Content-Length: N\r\n` (other headers allowed and ignored) `\r\n` then N bytes.
// Bad frames are reported, never thrown, and the reader resynchronises at the next
// "Content-Length:" header: a header block without Content-Length, with an unparsable or huge
// length (over `max_body`), or a header block longer than `max_header` is refused without ever
// buffering its body. Memory held is bounded by max_header + max_body.
//
// Not thread-safe: one reader per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "engine/base/expected.h"

namespace ghostline::lsp {

class FrameReader {
 public:
  static constexpr size_t kDefaultMaxBody = size_t{64} << 20;  // 64 MiB
  static constexpr size_t kDefaultMaxHeader = 8 << 10;         // 8 KiB

  explicit FrameReader(size_t max_body = kDefaultMaxBody, size_t max_header = kDefaultMaxHeader)
      : max_body_(max_body), max_header_(max_header) {}

  // Appends received bytes. Call next() until it returns nullopt before feeding more.
  void feed(std::string_view bytes);

  // The next complete frame body, or an Error (InvalidArgument) for a refused frame,
  // or nullopt when more bytes are needed.
  std::optional<Expected<std::string>> next();

  // Bytes currently buffered (for tests of the memory bound).
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  enum class State { Header, Body, Resync };
  void compact();

  size_t max_body_, max_header_;
  std::string buf_;
  size_t pos_ = 0;              // start of unconsumed bytes in buf_
  State state_ = State::Header;
  size_t body_len_ = 0;
};

// Wraps a body in its header, ready to write.
std::string frame(std::string_view body);

}  // namespace ghostline::lsp
