// The real completion service with the embedded model: answers, typing-through, the suggestion
// cache, cancellation, early first lines, bad input and a model that fails to load.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "completion/service.h"

using namespace ghostline;
using namespace ghostline::completion;

namespace {

const std::string kModel = std::string(GHOSTLINE_SOURCE_DIR) + "/models/ghostline-coder-tiny";

Settings embedded() {
  Settings s;
  s.model = kModel;
  s.threads = 1;
  s.max_tokens = 32;
  s.early_first_line_ms = -1;
  return s;
}

Expected<CompletionResult> ask(Service& service, const std::string& uri, size_t cursor, int version,
                               CancelToken cancel = CancelToken::make()) {
  std::promise<Expected<CompletionResult>> p;
  auto f = p.get_future();
  CompletionRequest r;
  r.uri = uri;
  r.version = version;
  r.cursor = cursor;
  service.complete(r, cancel, [&p](Expected<CompletionResult> res) { p.set_value(std::move(res)); });
  REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  return f.get();
}

std::string text_of(const CompletionResult& r) { return r.items.empty() ? "" : r.items.front().insert_text; }

const std::string kPython =
    "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\ndef circumference(radius):\n    return ";

}  // namespace

TEST_CASE("an obvious Python context gets a non-empty single-line suggestion from the engine") {
  auto service = make_service(embedded());
  service->open("file:///a.py", "python", kPython, 1);
  auto r = ask(*service, "file:///a.py", kPython.size(), 1);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->stats.source == "engine");
  REQUIRE(r->items.size() == 1);
  CHECK_FALSE(text_of(*r).empty());
  CHECK(text_of(*r).find('\n') == std::string::npos);  // single-line mode: one line
  CHECK(r->items[0].replace_start == kPython.size());
  CHECK(r->stats.prompt_tokens > 20);
  CHECK(r->stats.generated_tokens >= 1);
  CHECK(r->stats.total_ms >= r->stats.ttft_ms);
  // The time before the engine: queue (here the model load) and context, both inside ttft.
  CHECK(r->stats.queue_ms >= 0);
  CHECK(r->stats.context_ms > 0);
  CHECK(r->stats.ttft_ms >= r->stats.queue_ms + r->stats.context_ms);
}

TEST_CASE("typing-through answers with the remainder; a differing keystroke asks the engine again") {
  auto service = make_service(embedded());
  std::string doc = kPython;
  service->open("file:///t.py", "python", doc, 1);
  auto first = ask(*service, "file:///t.py", doc.size(), 1);
  REQUIRE(first);
  const std::string s = text_of(*first);
  REQUIRE_MESSAGE(s.size() >= 2, "the model suggested '" << s << "'");

  // Type the suggestion's first character: the rest comes back at once, without the engine.
  const size_t at = doc.size();
  REQUIRE(service->change("file:///t.py", 2, {DocumentEdit{at, at, s.substr(0, 1)}}));
  auto through = ask(*service, "file:///t.py", at + 1, 2);
  REQUIRE(through);
  CHECK(through->stats.source == "typing-through");
  CHECK(text_of(*through) == s.substr(1));

  // A character that differs from the suggestion: not a stale remainder.
  const char other = s[1] == 'Q' ? 'Z' : 'Q';
  REQUIRE(service->change("file:///t.py", 3, {DocumentEdit{at + 1, at + 1, std::string(1, other)}}));
  auto fresh = ask(*service, "file:///t.py", at + 2, 3);
  REQUIRE(fresh);
  CHECK(fresh->stats.source != "typing-through");
  CHECK((text_of(*fresh).empty() || text_of(*fresh) != s.substr(2)));

  // Undo both keystrokes: the first prompt again, answered without the engine.
  REQUIRE(service->change("file:///t.py", 4, {DocumentEdit{at, at + 2, ""}}));
  auto again = ask(*service, "file:///t.py", at, 4);
  REQUIRE(again);
  CHECK(again->stats.source != "engine");
  CHECK(text_of(*again) == s);

  // The same text in another document (the same edit in two places): a suggestion-cache hit.
  service->open("file:///t2.py", "python", kPython, 1);
  auto twin = ask(*service, "file:///t2.py", kPython.size(), 1);
  REQUIRE(twin);
  CHECK(twin->stats.source == "cache");
  CHECK(text_of(*twin) == s);

  const ServiceStatus st = service->status();
  CHECK(st.loaded);
  CHECK(st.answers.at("typing-through") >= 1);
  CHECK(st.answers.at("cache") >= 1);
  CHECK(st.answers.at("engine") == 2);
  CHECK(st.prompt_tokens > 0);
}

TEST_CASE("cancelled requests answer Cancelled; the service keeps working") {
  auto service = make_service(embedded());
  service->open("file:///c.py", "python", kPython, 1);
  CancelToken before = CancelToken::make();
  before.cancel();
  auto r = ask(*service, "file:///c.py", kPython.size(), 1, before);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::Cancelled);

  // Cancel while the request is queued or running: it must still be answered exactly once.
  std::promise<Expected<CompletionResult>> p;
  CancelToken during = CancelToken::make();
  CompletionRequest req;
  req.uri = "file:///c.py";
  req.version = 1;
  req.cursor = kPython.size();
  req.max_tokens = 64;
  service->complete(req, during, [&p](Expected<CompletionResult> res) { p.set_value(std::move(res)); });
  during.cancel();
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto late = f.get();
  if (!late) CHECK(late.error().code == ErrorCode::Cancelled);  // or it finished before the cancel

  auto after = ask(*service, "file:///c.py", kPython.size(), 1);
  CHECK(after);
}

TEST_CASE("a request for an older version is superseded; bad input gets clear errors") {
  auto service = make_service(embedded());
  service->open("file:///b.py", "python", kPython, 1);
  REQUIRE(service->change("file:///b.py", 2, {DocumentEdit{0, 0, "# top\n"}}));
  auto stale = ask(*service, "file:///b.py", 3, 1);
  REQUIRE_FALSE(stale);
  CHECK(stale.error().code == ErrorCode::Cancelled);

  auto past_end = ask(*service, "file:///b.py", kPython.size() + 100, 2);
  REQUIRE_FALSE(past_end);
  CHECK(past_end.error().code == ErrorCode::InvalidArgument);
  CHECK(past_end.error().message.find("past the end") != std::string::npos);

  auto unknown = ask(*service, "file:///nope.py", 0, 1);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == ErrorCode::NotFound);

  auto bad_edit = service->change("file:///b.py", 3, {DocumentEdit{10, 5, "x"}});
  CHECK_FALSE(bad_edit);

  // Bytes that are not UTF-8 are kept and never crash the parse or the prompt.
  std::string latin1 = "def f():\n    s = '\xe9t\xe9'\n    return ";
  service->open("file:///l.py", "python", latin1, 1);
  auto r = ask(*service, "file:///l.py", latin1.size(), 1);
  CHECK(r);
}

TEST_CASE("no suggestion inside a comment; disabled languages get none") {
  Settings s = embedded();
  auto service = make_service(s);
  const std::string doc = "def f():\n    # compute the sum of\n    return 1\n";
  service->open("file:///k.py", "python", doc, 1);
  auto r = ask(*service, "file:///k.py", doc.find(" of\n") + 3, 1);
  REQUIRE(r);
  CHECK(r->items.empty());
  CHECK(r->stats.source == "none");

  s.enabled_languages = {"cpp"};
  service->configure(s);
  auto off = ask(*service, "file:///k.py", doc.size() - 1, 1);
  REQUIRE(off);
  CHECK(off->items.empty());
}

TEST_CASE("a multi-line suggestion answered early with its first line; the rest by typing-through") {
  const std::string doc = "class Point:\n    def __init__(self, x, y):\n        ";
  // The whole suggestion, for reference.
  auto whole_service = make_service(embedded());
  whole_service->open("file:///w.py", "python", doc, 1);
  auto whole = ask(*whole_service, "file:///w.py", doc.size(), 1);
  REQUIRE(whole);
  const std::string full = text_of(*whole);
  const size_t nl = full.find('\n');
  if (nl == std::string::npos) {
    MESSAGE("the model's suggestion is one line ('" << full << "'): nothing to answer early");
    return;
  }
  Settings s = embedded();
  s.early_first_line_ms = 0;
  auto service = make_service(s);
  service->open("file:///w.py", "python", doc, 1);
  auto early = ask(*service, "file:///w.py", doc.size(), 1);
  REQUIRE(early);
  CHECK(early->stats.source == "engine-first-line");
  CHECK(text_of(*early) == full.substr(0, nl));
  // Accept the first line; once the background generation ends, the rest is typing-through.
  REQUIRE(service->change("file:///w.py", 2, {DocumentEdit{doc.size(), doc.size(), full.substr(0, nl)}}));
  std::string rest;
  for (int i = 0; i < 100 && rest.empty(); ++i) {
    auto r = ask(*service, "file:///w.py", doc.size() + nl, 2);
    REQUIRE(r);
    if (r->stats.source == "typing-through" && text_of(*r) != "") rest = text_of(*r);
    if (rest.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (r->stats.source != "typing-through") break;
  }
  CHECK(rest == full.substr(nl));
}

TEST_CASE("a model that fails to load gives a clear error; configuring a good one recovers") {
  Settings bad = embedded();
  bad.model = "/nonexistent/model";
  auto service = make_service(bad);
  service->open("file:///m.py", "python", kPython, 1);
  auto r = ask(*service, "file:///m.py", kPython.size(), 1);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("/nonexistent/model") != std::string::npos);
  CHECK(service->status().load_error.find("/nonexistent/model") != std::string::npos);

  service->configure(embedded());
  auto ok = ask(*service, "file:///m.py", kPython.size(), 1);
  REQUIRE_MESSAGE(ok, (ok ? "" : ok.error().message));
  CHECK(ok->stats.source == "engine");
}
