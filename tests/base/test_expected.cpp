// Expected<T>, Callback<T> and CancelToken behave as their headers promise.
#include <doctest/doctest.h>

#include <thread>

#include "engine/base/cancel.h"
#include "engine/base/expected.h"

using namespace ghostline;

static Expected<int> parse_positive(int v) {
  if (v <= 0) return make_error(ErrorCode::InvalidArgument, "not positive: " + std::to_string(v));
  return v;
}

TEST_CASE("Expected holds a value or an error") {
  auto good = parse_positive(3);
  REQUIRE(good);
  CHECK(*good == 3);
  auto bad = parse_positive(-1);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == ErrorCode::InvalidArgument);
  CHECK(bad.error().message == "not positive: -1");
  CHECK(std::string(to_string(bad.error().code)) == "invalid argument");
}

TEST_CASE("Expected<void>") {
  Expected<void> fine = ok();
  CHECK(fine);
  Expected<void> broken = make_error(ErrorCode::Io, "disk");
  CHECK_FALSE(broken);
  CHECK(broken.error().code == ErrorCode::Io);
}

TEST_CASE("CancelToken copies share one flag across threads") {
  CancelToken none;
  none.cancel();
  CHECK_FALSE(none.cancelled());
  auto token = CancelToken::make();
  auto copy = token;
  CHECK_FALSE(copy.cancelled());
  std::thread([token] { token.cancel(); }).join();
  CHECK(copy.cancelled());
}

TEST_CASE("CancelToken runs on_cancel callbacks exactly once") {
  auto token = CancelToken::make();
  int calls = 0;
  token.on_cancel([&] { ++calls; });
  token.cancel();
  token.cancel();
  CHECK(calls == 1);
  token.on_cancel([&] { ++calls; });  // already cancelled: runs at once
  CHECK(calls == 2);
}
