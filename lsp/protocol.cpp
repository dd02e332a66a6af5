// Protocol structs to and from JSON (see protocol.h).
#include "lsp/protocol.h"

namespace ghostline::lsp {

void to_json(json& j, const Position& p) { j = json{{"line", p.line}, {"character", p.character}}; }
void from_json(const json& j, Position& p) {
  j.at("line").get_to(p.line);
  j.at("character").get_to(p.character);
}
void to_json(json& j, const Range& r) { j = json{{"start", r.start}, {"end", r.end}}; }
void from_json(const json& j, Range& r) {
  j.at("start").get_to(r.start);
  j.at("end").get_to(r.end);
}

void from_json(const json& j, TextDocumentItem& t) {
  j.at("uri").get_to(t.uri);
  j.at("languageId").get_to(t.languageId);
  j.at("version").get_to(t.version);
  j.at("text").get_to(t.text);
}
void from_json(const json& j, TextDocumentIdentifier& t) { j.at("uri").get_to(t.uri); }
void from_json(const json& j, VersionedTextDocumentIdentifier& t) {
  j.at("uri").get_to(t.uri);
  j.at("version").get_to(t.version);
}
void from_json(const json& j, DidOpenTextDocumentParams& p) { j.at("textDocument").get_to(p.textDocument); }

void from_json(const json& j, ContentChange& c) {
  if (j.contains("range") && !j.at("range").is_null()) c.range = j.at("range").get<Range>();
  j.at("text").get_to(c.text);
}
void from_json(const json& j, DidChangeTextDocumentParams& p) {
  j.at("textDocument").get_to(p.textDocument);
  j.at("contentChanges").get_to(p.contentChanges);
}
void from_json(const json& j, DidCloseTextDocumentParams& p) { j.at("textDocument").get_to(p.textDocument); }
void from_json(const json& j, DidSaveTextDocumentParams& p) {
  j.at("textDocument").get_to(p.textDocument);
  if (j.contains("text") && j.at("text").is_string()) p.text = j.at("text").get<std::string>();
}

void from_json(const json& j, InitializeParams& p) {
  if (!j.is_object()) throw json::type_error::create(302, "initialize params must be an object", &j);
  const json caps = j.value("capabilities", json::object());
  if (caps.contains("general") && caps["general"].contains("positionEncodings"))
    caps["general"]["positionEncodings"].get_to(p.positionEncodings);
  if (caps.contains("window") && caps["window"].contains("workDoneProgress"))
    caps["window"]["workDoneProgress"].get_to(p.workDoneProgress);
  if (caps.contains("textDocument") && caps["textDocument"].is_object() && caps["textDocument"].contains("codeAction")) {
    const json& ca = caps["textDocument"]["codeAction"];
    const bool data = !(ca.is_object() && ca.contains("dataSupport") && ca["dataSupport"].is_boolean() && !ca["dataSupport"].get<bool>());
    if (data && ca.is_object() && ca.contains("resolveSupport") && ca["resolveSupport"].is_object() &&
        ca["resolveSupport"].contains("properties") && ca["resolveSupport"]["properties"].is_array())
      for (const auto& prop : ca["resolveSupport"]["properties"])
        if (prop == "edit") p.codeActionResolve = true;
  }
  p.initializationOptions = j.value("initializationOptions", json());
}

void to_json(json& j, const InitializeResult& r) {
  j = json{
      {"capabilities",
       {{"positionEncoding", to_string(r.positionEncoding)},
        {"textDocumentSync", {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
        {"inlineCompletionProvider", json::object()},
        {"completionProvider", {{"resolveProvider", false}, {"triggerCharacters", json::array()}}},
        {"codeActionProvider", {{"codeActionKinds", {"quickfix"}}, {"resolveProvider", true}}}}},
      {"serverInfo", {{"name", "ghostline"}, {"version", r.version}}}};
}

void from_json(const json& j, InlineCompletionParams& p) {
  j.at("textDocument").get_to(p.textDocument);
  j.at("position").get_to(p.position);
  if (j.contains("context")) {
    const json& c = j.at("context");
    c.at("triggerKind").get_to(p.triggerKind);
    if (c.contains("selectedCompletionInfo") && !c["selectedCompletionInfo"].is_null()) {
      SelectedCompletionInfo s;
      c["selectedCompletionInfo"].at("range").get_to(s.range);
      c["selectedCompletionInfo"].at("text").get_to(s.text);
      p.selectedCompletionInfo = std::move(s);
    }
  }
}

void to_json(json& j, const InlineCompletionItem& i) {
  j = json{{"insertText", i.insertText}};
  if (i.filterText) j["filterText"] = *i.filterText;
  if (i.range) j["range"] = *i.range;
}
void to_json(json& j, const InlineCompletionList& l) { j = json{{"items", l.items}}; }

void from_json(const json& j, CompletionParams& p) {
  j.at("textDocument").get_to(p.textDocument);
  j.at("position").get_to(p.position);
  if (j.contains("context") && j["context"].contains("triggerKind")) j["context"]["triggerKind"].get_to(p.triggerKind);
}

void to_json(json& j, const TextEdit& e) { j = json{{"range", e.range}, {"newText", e.newText}}; }
void from_json(const json& j, TextEdit& e) {
  j.at("range").get_to(e.range);
  j.at("newText").get_to(e.newText);
}

void to_json(json& j, const CompletionItem& i) {
  j = json{{"label", i.label}, {"kind", 1}, {"detail", "Ghostline"}, {"filterText", i.filterText},
           {"insertTextFormat", 1}, {"textEdit", i.textEdit}};
}
void to_json(json& j, const CompletionList& l) { j = json{{"isIncomplete", l.isIncomplete}, {"items", l.items}}; }

void to_json(json& j, const LspDiagnostic& d) {
  j = json{{"range", d.range}, {"message", d.message}, {"severity", d.severity}};
  if (d.source) j["source"] = *d.source;
}
void from_json(const json& j, LspDiagnostic& d) {
  j.at("range").get_to(d.range);
  j.at("message").get_to(d.message);
  if (j.contains("source") && j["source"].is_string()) d.source = j["source"].get<std::string>();
  if (j.contains("severity") && j["severity"].is_number_integer()) d.severity = j["severity"].get<int>();
}

void from_json(const json& j, CodeActionParams& p) {
  j.at("textDocument").get_to(p.textDocument);
  j.at("range").get_to(p.range);
  const json& context = j.at("context");
  context.at("diagnostics").get_to(p.diagnostics);
  if (context.contains("only") && !context["only"].is_null()) p.only = context["only"].get<std::vector<std::string>>();
}

void to_json(json& j, const FixData& d) { j = json{{"uri", d.uri}, {"version", d.version}, {"diagnostic", d.diagnostic}}; }
void from_json(const json& j, FixData& d) {
  j.at("uri").get_to(d.uri);
  j.at("version").get_to(d.version);
  j.at("diagnostic").get_to(d.diagnostic);
}

void to_json(json& j, const CodeAction& a) {
  j = json{{"title", a.title}, {"kind", "quickfix"}, {"diagnostics", a.diagnostics}, {"data", a.data}};
  if (a.edit) j["edit"] = json{{"changes", *a.edit}};
}
void from_json(const json& j, CodeAction& a) {
  j.at("title").get_to(a.title);
  if (j.contains("diagnostics")) j["diagnostics"].get_to(a.diagnostics);
  j.at("data").get_to(a.data);
}

void from_json(const json& j, CancelParams& p) {
  p.id = j.at("id");
  if (!p.id.is_number_integer() && !p.id.is_string()) throw json::type_error::create(302, "id must be an integer or a string", &j);
}
void from_json(const json& j, SetTraceParams& p) { j.at("value").get_to(p.value); }
void from_json(const json& j, DidChangeConfigurationParams& p) { p.settings = j.at("settings"); }

void to_json(json& j, const PublishDiagnosticsParams& p) {
  j = json{{"uri", p.uri}, {"diagnostics", p.diagnostics}};
  if (p.version) j["version"] = *p.version;
}

namespace {
json stats_json(const completion::CompletionStats& s) {
  return json{{"source", s.source},           {"promptTokens", s.prompt_tokens}, {"cachedTokens", s.cached_tokens},
              {"generatedTokens", s.generated_tokens}, {"draftProposed", s.draft_proposed},
              {"draftAccepted", s.draft_accepted},   {"ttftMs", s.ttft_ms},             {"totalMs", s.total_ms},
              {"queueMs", s.queue_ms},               {"contextMs", s.context_ms}};
}
}  // namespace

void to_json(json& j, const CompletionStatsParams& p) {
  j = stats_json(p.stats);
  j["uri"] = p.uri;
  j["requestId"] = p.requestId;
  j["method"] = p.method;
  j["items"] = p.items;
}

void to_json(json& j, const StatusResult& r) {
  const completion::ServiceStatus& s = r.status;
  json answers = json::object();
  for (const auto& [source, n] : s.answers) answers[source] = n;
  j = json{{"model", s.model},
           {"modelName", s.model_name},
           {"device", s.device},
           {"loaded", s.loaded},
           {"loadError", s.load_error},
           {"kvCapacityTokens", s.kv_capacity_tokens},
           {"answers", std::move(answers)},
           {"cancelled", s.cancelled},
           {"failed", s.failed},
           {"promptTokens", s.prompt_tokens},
           {"cachedTokens", s.cached_tokens},
           {"generatedTokens", s.generated_tokens},
           {"last", stats_json(s.last)}};
}

void apply_settings(const json& in, completion::Settings& s) {
  if (!in.is_object()) return;
  const json& j = in.contains("ghostline") && in["ghostline"].is_object() ? in["ghostline"] : in;
  if (j.contains("model")) j["model"].get_to(s.model);
  if (j.contains("endpoint")) j["endpoint"].get_to(s.endpoint);
  if (j.contains("device")) j["device"].get_to(s.device);
  if (j.contains("maxTokens")) j["maxTokens"].get_to(s.max_tokens);
  if (j.contains("temperature")) j["temperature"].get_to(s.temperature);
  if (j.contains("enabledLanguages")) j["enabledLanguages"].get_to(s.enabled_languages);
  if (j.contains("completeInComments")) j["completeInComments"].get_to(s.complete_in_comments);
}

}  // namespace ghostline::lsp
