// Protocol: plain structs for the LSP messages Ghostline speaks, with the LSP's own field
// spellings, and free to_json/from_json beside each (nlohmann ADL). from_json throws
// nlohmann::json::exception on a missing or mistyped required field; the binder catches that
// at the parse step and answers InvalidParams. Nothing else here throws.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lsp/documents.h"
#include "lsp/positions.h"

namespace ghostline::lsp {

using json = nlohmann::json;

// JSON-RPC and LSP error codes.
enum ErrorCodeRpc : int {
  kParseError = -32700,
  kInvalidRequest = -32600,
  kMethodNotFound = -32601,
  kInvalidParams = -32602,
  kInternalError = -32603,
  kServerNotInitialized = -32002,
  kRequestFailed = -32803,
  kContentModified = -32801,
  kRequestCancelled = -32800,
};

void to_json(json& j, const Position& p);
void from_json(const json& j, Position& p);
void to_json(json& j, const Range& r);
void from_json(const json& j, Range& r);

struct TextDocumentItem { std::string uri, languageId; int version = 0; std::string text; };
void from_json(const json& j, TextDocumentItem& t);

struct TextDocumentIdentifier { std::string uri; };
void from_json(const json& j, TextDocumentIdentifier& t);

struct VersionedTextDocumentIdentifier { std::string uri; int version = 0; };
void from_json(const json& j, VersionedTextDocumentIdentifier& t);

struct DidOpenTextDocumentParams { TextDocumentItem textDocument; };
void from_json(const json& j, DidOpenTextDocumentParams& p);

void from_json(const json& j, ContentChange& c);
struct DidChangeTextDocumentParams {
  VersionedTextDocumentIdentifier textDocument;
  std::vector<ContentChange> contentChanges;
};
void from_json(const json& j, DidChangeTextDocumentParams& p);

struct DidCloseTextDocumentParams { TextDocumentIdentifier textDocument; };
void from_json(const json& j, DidCloseTextDocumentParams& p);

struct DidSaveTextDocumentParams { TextDocumentIdentifier textDocument; std::optional<std::string> text; };
void from_json(const json& j, DidSaveTextDocumentParams& p);

struct InitializeParams {
  std::vector<std::string> positionEncodings;     // capabilities.general.positionEncodings
  bool workDoneProgress = false;                  // capabilities.window.workDoneProgress
  // capabilities.textDocument.codeAction.resolveSupport.properties lists "edit" (and dataSupport
  // is not false): the client resolves code actions, so their edits can wait for codeAction/resolve.
  bool codeActionResolve = false;
  json initializationOptions;                     // settings, as in didChangeConfiguration
};
void from_json(const json& j, InitializeParams& p);

struct InitializeResult { PositionEncoding positionEncoding = PositionEncoding::Utf16; std::string version; };
void to_json(json& j, const InitializeResult& r);

struct SelectedCompletionInfo { Range range; std::string text; };
struct InlineCompletionParams {
  TextDocumentIdentifier textDocument;
  Position position;
  int triggerKind = 2;                            // 1 Invoked, 2 Automatic
  std::optional<SelectedCompletionInfo> selectedCompletionInfo;
};
void from_json(const json& j, InlineCompletionParams& p);

struct InlineCompletionItem { std::string insertText; std::optional<std::string> filterText; std::optional<Range> range; };
void to_json(json& j, const InlineCompletionItem& i);
struct InlineCompletionList { std::vector<InlineCompletionItem> items; };
void to_json(json& j, const InlineCompletionList& l);

struct CompletionParams { TextDocumentIdentifier textDocument; Position position; int triggerKind = 1; };
void from_json(const json& j, CompletionParams& p);

struct TextEdit { Range range; std::string newText; };
void to_json(json& j, const TextEdit& e);

struct CompletionItem { std::string label; std::string filterText; TextEdit textEdit; };
void to_json(json& j, const CompletionItem& i);
struct CompletionList { bool isIncomplete = true; std::vector<CompletionItem> items; };
void to_json(json& j, const CompletionList& l);

struct LspDiagnostic { Range range; std::string message; std::optional<std::string> source; int severity = 1; };
void to_json(json& j, const LspDiagnostic& d);
void from_json(const json& j, LspDiagnostic& d);

struct CodeActionParams {
  TextDocumentIdentifier textDocument;
  Range range;
  std::vector<LspDiagnostic> diagnostics;         // context.diagnostics
  std::optional<std::vector<std::string>> only;   // context.only: the kinds the client wants
};
void from_json(const json& j, CodeActionParams& p);

// data carried from codeAction to codeAction/resolve.
struct FixData { std::string uri; int version = 0; LspDiagnostic diagnostic; };
void to_json(json& j, const FixData& d);
void from_json(const json& j, FixData& d);

struct CodeAction {
  std::string title;
  std::vector<LspDiagnostic> diagnostics;
  FixData data;
  std::optional<std::map<std::string, std::vector<TextEdit>>> edit;  // WorkspaceEdit.changes
};
void to_json(json& j, const CodeAction& a);
void from_json(const json& j, CodeAction& a);

struct CancelParams { json id; };
void from_json(const json& j, CancelParams& p);

struct SetTraceParams { std::string value; };
void from_json(const json& j, SetTraceParams& p);

struct DidChangeConfigurationParams { json settings; };
void from_json(const json& j, DidChangeConfigurationParams& p);

struct PublishDiagnosticsParams { std::string uri; std::optional<int> version; std::vector<LspDiagnostic> diagnostics; };
void to_json(json& j, const PublishDiagnosticsParams& p);

// Ghostline's own methods (see server.h). Field names are the service's, in camelCase.
// ghostline/completionStats: sent after each answered completion request.
struct CompletionStatsParams {
  std::string uri;
  json requestId;                                 // the id of the request that was answered
  std::string method;                             // textDocument/inlineCompletion or textDocument/completion
  int items = 0;                                  // suggestions in the answer
  completion::CompletionStats stats;              // incl. source: engine, engine-first-line, cache, typing-through, none
};
void to_json(json& j, const CompletionStatsParams& p);
// ghostline/status: the service's counters and model facts.
struct StatusResult { completion::ServiceStatus status; };
void to_json(json& j, const StatusResult& r);

// Settings from didChangeConfiguration / initializationOptions: `{"ghostline": {...}}` or the
// object itself; keys model, endpoint, device, maxTokens, temperature, enabledLanguages,
// completeInComments. Unknown keys are ignored; a mistyped known key throws (InvalidParams).
void apply_settings(const json& j, completion::Settings& s);

}  // namespace ghostline::lsp
