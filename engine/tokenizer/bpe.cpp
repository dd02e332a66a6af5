// BPE: loading vocab + merges and the priority-queue merge loop (same order as `tokenizers`).
#include "engine/tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "engine/tokenizer/unicode_text.h"

namespace ghostline::engine::tokenizer_detail {

using json = nlohmann::json;

static std::string optional_string(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

Expected<std::unique_ptr<BpeModel>> BpeModel::parse(const json& model, bool byte_level) {
  auto bad = [](const std::string& m) { return make_error(ErrorCode::InvalidArgument, "model: " + m); };
  if (!model.contains("vocab") || !model["vocab"].is_object()) return bad("\"vocab\" must be an object");
  if (!model.contains("merges") || !model["merges"].is_array()) return bad("\"merges\" must be an array");
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    return make_error(ErrorCode::Unsupported, "model: BPE dropout is not supported");

  auto m = std::make_unique<BpeModel>();
  m->byte_level_ = byte_level;
  m->ignore_merges_ = model.value("ignore_merges", false);
  m->byte_fallback_ = model.value("byte_fallback", false);
  m->fuse_unk_ = model.value("fuse_unk", false);
  m->prefix_ = optional_string(model, "continuing_subword_prefix");
  m->suffix_ = optional_string(model, "end_of_word_suffix");

  // key_of: a spelling in word space (bytes for a byte-level vocabulary).
  std::string tmp;
  auto key_of = [&](const std::string& spelling, std::string* key) {
    if (!byte_level) { *key = spelling; return true; }
    return byte_level_decode(spelling, key);
  };
  m->vocab_.reserve(model["vocab"].size());
  m->key_vocab_.reserve(model["vocab"].size());
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer()) return bad("vocab entry \"" + it.key() + "\" has no integer id");
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > 0x7FFFFFF) return bad("vocab id out of range for \"" + it.key() + "\"");
    m->vocab_[it.key()] = static_cast<int32_t>(id);
    if (static_cast<size_t>(id) >= m->spellings_.size()) m->spellings_.resize(id + 1);
    m->spellings_[id] = it.key();
    if (key_of(it.key(), &tmp)) m->key_vocab_[tmp] = static_cast<int32_t>(id);
  }
  for (int b = 0; b < 256; ++b) {
    auto f = m->key_vocab_.find(std::string(1, static_cast<char>(b)));
    m->byte_ids_[b] = (byte_level && f != m->key_vocab_.end()) ? f->second : -1;
  }
  std::string unk = optional_string(model, "unk_token");
  if (!unk.empty()) {
    auto f = m->vocab_.find(unk);
    if (f != m->vocab_.end()) m->unk_id_ = f->second;
  }

  const auto& merges = model["merges"];
  m->merges_.reserve(merges.size());
  std::string a, b, ka, kb;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& e = merges[rank];
    if (e.is_string()) {
      const auto& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return bad("merge " + std::to_string(rank) + " \"" + s + "\" is not two tokens separated by a space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      return bad("merge " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto ia = m->vocab_.find(a), ib = m->vocab_.find(b);
    if (ia == m->vocab_.end() || ib == m->vocab_.end())
      return bad("merge " + std::to_string(rank) + " uses a token missing from the vocab: \"" + a + "\" \"" + b + "\"");
    std::string merged = a + (m->prefix_.size() && b.compare(0, m->prefix_.size(), m->prefix_) == 0
                                  ? b.substr(m->prefix_.size()) : b);
    auto im = m->vocab_.find(merged);
    if (im == m->vocab_.end())
      return bad("merge " + std::to_string(rank) + " makes \"" + merged + "\", which is not in the vocab");
    m->merges_.emplace(pair_key(ia->second, ib->second), MergeResult{static_cast<int32_t>(rank), im->second});
  }
  return m;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>* ids) const {
  bool fast = byte_level_ && prefix_.empty() && suffix_.empty();
  bool last_unk = false;
  std::string unit;
  for (size_t i = 0; i < word.size();) {
    size_t n = byte_level_ ? 1 : utf8_len(static_cast<unsigned char>(word[i]));
    if (i + n > word.size()) n = word.size() - i;
    if (fast) {
      int32_t id = byte_ids_[static_cast<unsigned char>(word[i])];
      if (id >= 0) ids->push_back(id);
      else if (unk_id_) ids->push_back(*unk_id_);
      i += n;
      continue;
    }
    unit.clear();
    if (i > 0) unit += prefix_;
    unit.append(word.substr(i, n));
    if (i + n == word.size()) unit += suffix_;
    auto f = key_vocab_.find(unit);
    if (f != key_vocab_.end()) {
      ids->push_back(f->second);
      last_unk = false;
    } else {
      bool done = false;
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (size_t k = 0; k < n; ++k) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(word[i + k]));
          auto g = vocab_.find(name);
          if (g == vocab_.end()) break;
          bytes.push_back(g->second);
        }
        if (bytes.size() == n) {
          ids->insert(ids->end(), bytes.begin(), bytes.end());
          done = true;
          last_unk = false;
        }
      }
      if (!done && unk_id_) {
        if (!(fuse_unk_ && last_unk)) ids->push_back(*unk_id_);
        last_unk = true;
      }
    }
    i += n;
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    auto f = key_vocab_.find(std::string(word));
    if (f != key_vocab_.end()) {
      out->push_back(f->second);
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  initial_symbols(word, &ids);
  const int n = static_cast<int>(ids.size());
  if (n <= 1) {
    out->insert(out->end(), ids.begin(), ids.end());
    return;
  }
  std::vector<int> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;
    int32_t id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
  auto consider = [&](int left) {
    int right = next[left];
    if (right < 0) return;
    auto f = merges_.find(pair_key(ids[left], ids[right]));
    if (f != merges_.end()) queue.push({f->second.rank, left, f->second.id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    Cand c = queue.top();
    queue.pop();
    if (!alive[c.pos]) continue;
    int right = next[c.pos];
    if (right < 0) continue;
    auto f = merges_.find(pair_key(ids[c.pos], ids[right]));
    if (f == merges_.end() || f->second.id != c.id) continue;  // stale entry
    ids[c.pos] = c.id;
    alive[right] = 0;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    if (prev[c.pos] >= 0) consider(prev[c.pos]);
    consider(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(ids[i]);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.size() == 1 && byte_ids_[static_cast<unsigned char>(word[0])] >= 0 && suffix_.empty()) {
    out->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto f = cache_.find(key);
    if (f != cache_.end()) {
      out->insert(out->end(), f->second.begin(), f->second.end());
      return;
    }
  }
  size_t before = out->size();
  merge_word(word, out);
  if (word.size() > 256) return;  // long runs are rare; keep the cache small
  std::vector<int32_t> result(out->begin() + static_cast<std::ptrdiff_t>(before), out->end());
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(std::move(key), std::move(result));
}

}  // namespace ghostline::engine::tokenizer_detail
