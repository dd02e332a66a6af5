// FrameReader: Content-Length framing as a pure state machine (see frame_reader.h).
#include "lsp/frame_reader.h"

#include <cctype>
#include <charconv>

namespace ghostline::lsp {
namespace {

constexpr std::string_view kHeaderName = "content-length:";

bool iequals_prefix(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (size_t i = 0; i < lower_prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != lower_prefix[i]) return false;
  return true;
}

// Position of the next "Content-Length:" (case-insensitive) at or after `from`, or npos.
size_t find_header_name(std::string_view s, size_t from) {
  for (size_t i = from; i + kHeaderName.size() <= s.size(); ++i)
    if (iequals_prefix(s.substr(i), kHeaderName)) return i;
  return std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

void FrameReader::feed(std::string_view bytes) { buf_.append(bytes); }

void FrameReader::compact() {
  if (pos_ > 0 && (pos_ >= 4096 || pos_ == buf_.size())) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

std::optional<Expected<std::string>> FrameReader::next() {
  for (;;) {
    std::string_view rest(buf_.data() + pos_, buf_.size() - pos_);
    if (state_ == State::Resync) {
      size_t at = find_header_name(rest, 0);
      if (at == std::string_view::npos) {
        // Keep only a tail that could be the start of a header name.
        size_t keep = std::min(rest.size(), kHeaderName.size() - 1);
        pos_ += rest.size() - keep;
        compact();
        return std::nullopt;
      }
      pos_ += at;
      state_ = State::Header;
      continue;
    }
    if (state_ == State::Body) {
      if (rest.size() < body_len_) return std::nullopt;
      std::string body(rest.substr(0, body_len_));
      pos_ += body_len_;
      state_ = State::Header;
      compact();
      return Expected<std::string>(std::move(body));
    }
    // Header: skip stray line breaks between frames, then wait for the blank line.
    size_t skip = 0;
    while (skip < rest.size() && (rest[skip] == '\r' || rest[skip] == '\n')) ++skip;
    pos_ += skip;
    rest.remove_prefix(skip);
    size_t end = rest.find("\r\n\r\n");
    size_t sep = 4;
    if (size_t lf = rest.find("\n\n"); lf != std::string_view::npos && (end == std::string_view::npos || lf < end)) {
      end = lf;  // tolerate bare LF headers
      sep = 2;
    }
    if (end == std::string_view::npos) {
      if (rest.size() > max_header_) {
        state_ = State::Resync;
        pos_ += 1;  // drop at least the first byte so the resync makes progress
        return Expected<std::string>(make_error(ErrorCode::InvalidArgument,
                                                "frame header longer than " + std::to_string(max_header_) + " bytes without an end"));
      }
      compact();
      return std::nullopt;
    }
    std::string_view header = rest.substr(0, end);
    std::optional<size_t> length;
    std::string problem;
    size_t line_start = 0;
    while (line_start <= header.size()) {
      size_t nl = header.find('\n', line_start);
      std::string_view line = header.substr(line_start, nl == std::string_view::npos ? std::string_view::npos : nl - line_start);
      if (iequals_prefix(line, kHeaderName)) {
        std::string_view value = trim(line.substr(kHeaderName.size()));
        size_t n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        const bool digits_only = !value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos;
        if (digits_only && ec == std::errc::result_out_of_range) {
          problem = "Content-Length " + std::string(value.substr(0, 40)) + " exceeds the limit of " + std::to_string(max_body_) + " bytes";
        } else if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
          problem = "Content-Length is not a number: '" + std::string(value.substr(0, 40)) + "'";
        } else if (n > max_body_) {
          problem = "Content-Length " + std::string(value) + " exceeds the limit of " + std::to_string(max_body_) + " bytes";
        } else {
          length = n;
        }
      }
      if (nl == std::string_view::npos) break;
      line_start = nl + 1;
    }
    pos_ += end + sep;
    if (!length) {
      if (problem.empty()) problem = "frame header has no Content-Length";
      state_ = State::Resync;  // the body (if any) is skipped, never buffered as a message
      return Expected<std::string>(make_error(ErrorCode::InvalidArgument, problem));
    }
    body_len_ = *length;
    state_ = State::Body;
  }
}

std::string frame(std::string_view body) {
  std::string out = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

}  // namespace ghostline::lsp
