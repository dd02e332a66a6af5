// RadixCache: block-granular radix tree over token ids, LRU eviction of unreferenced leaves.
#include "engine/runtime/radix_cache.h"

#include <algorithm>
#include <functional>

namespace ghostline::engine::runtime {

struct RadixCache::Node {
  std::vector<int32_t> tokens;  // 1..B tokens of this block
  int block = -1;
  Node* parent = nullptr;
  uint64_t last_used = 0;
  std::vector<std::unique_ptr<Node>> children;
};

RadixCache::RadixCache(BlockManager& blocks, int block_size)
    : blocks_(blocks), block_size_(block_size), root_(std::make_unique<Node>()) {}

RadixCache::~RadixCache() { clear(); }

namespace {
int common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<int>(i);
}
}  // namespace

PrefixMatch RadixCache::match(std::span<const int32_t> tokens, int max_tokens) {
  PrefixMatch m;
  const size_t limit = std::min<size_t>(tokens.size(), std::max(max_tokens, 0));
  const uint64_t now = ++clock_;
  Node* node = root_.get();
  size_t pos = 0;
  while (pos < limit) {
    std::span<const int32_t> rest = tokens.subspan(pos, limit - pos);
    Node* full = nullptr;
    Node* best = nullptr;
    int best_len = 0;
    for (auto& c : node->children) {
      int len = common_prefix(c->tokens, rest);
      if (len == block_size_ && static_cast<int>(c->tokens.size()) == block_size_) { full = c.get(); break; }
      if (len > best_len) { best_len = len; best = c.get(); }
    }
    if (full) {
      full->last_used = now;
      blocks_.retain(full->block);
      m.blocks.push_back(full->block);
      node = full;
      pos += block_size_;
      continue;
    }
    if (best) {
      best->last_used = now;
      blocks_.retain(best->block);
      m.partial_block = best->block;
      m.partial_tokens = best_len;
    }
    break;
  }
  for (Node* p = node; p; p = p->parent) p->last_used = now;
  return m;
}

void RadixCache::insert(std::span<const int32_t> tokens, std::span<const int> blocks) {
  const uint64_t now = ++clock_;
  Node* node = root_.get();
  size_t pos = 0;
  for (size_t i = 0; pos < tokens.size() && i < blocks.size(); ++i) {
    const size_t n = std::min<size_t>(block_size_, tokens.size() - pos);
    std::span<const int32_t> chunk = tokens.subspan(pos, n);
    node->last_used = now;
    if (static_cast<int>(n) == block_size_) {
      Node* found = nullptr;
      for (auto& c : node->children)
        if (static_cast<int>(c->tokens.size()) == block_size_ && std::equal(chunk.begin(), chunk.end(), c->tokens.begin())) {
          found = c.get();
          break;
        }
      if (!found) {
        // Partial leaves that this full block extends are now redundant.
        std::vector<Node*> covered;
        for (auto& c : node->children)
          if (c->children.empty() && static_cast<int>(c->tokens.size()) < block_size_ &&
              std::equal(c->tokens.begin(), c->tokens.end(), chunk.begin()))
            covered.push_back(c.get());
        for (Node* s : covered) remove_leaf(s);
        auto child = std::make_unique<Node>();
        child->tokens.assign(chunk.begin(), chunk.end());
        child->block = blocks[i];
        child->parent = node;
        blocks_.retain(blocks[i]);
        ++n_nodes_;
        found = child.get();
        node->children.push_back(std::move(child));
      }
      found->last_used = now;
      node = found;
      pos += n;
      continue;
    }
    // The last, partial chunk: kept unless a cached block already covers it; it replaces
    // partial leaves that it extends.
    for (auto& c : node->children)
      if (c->tokens.size() >= n && std::equal(chunk.begin(), chunk.end(), c->tokens.begin())) {
        c->last_used = now;
        return;
      }
    std::vector<Node*> shorter;
    for (auto& c : node->children)
      if (c->children.empty() && c->tokens.size() < n && std::equal(c->tokens.begin(), c->tokens.end(), chunk.begin()))
        shorter.push_back(c.get());
    for (Node* s : shorter) remove_leaf(s);
    auto child = std::make_unique<Node>();
    child->tokens.assign(chunk.begin(), chunk.end());
    child->block = blocks[i];
    child->parent = node;
    child->last_used = now;
    blocks_.retain(blocks[i]);
    ++n_nodes_;
    node->children.push_back(std::move(child));
    return;
  }
}

void RadixCache::remove_leaf(Node* node) {
  Node* parent = node->parent;
  blocks_.release(node->block);
  --n_nodes_;
  auto& siblings = parent->children;
  siblings.erase(std::find_if(siblings.begin(), siblings.end(), [&](auto& c) { return c.get() == node; }));
}

int RadixCache::evict(int n) {
  int freed = 0;
  while (freed < n) {
    Node* victim = nullptr;
    std::function<void(Node*)> walk = [&](Node* x) {
      for (auto& c : x->children) {
        if (c->children.empty()) {
          if (blocks_.refs(c->block) == 1 && (!victim || c->last_used < victim->last_used)) victim = c.get();
        } else {
          walk(c.get());
        }
      }
    };
    walk(root_.get());
    if (!victim) break;
    remove_leaf(victim);
    ++freed;
  }
  return freed;
}

int RadixCache::evictable_blocks() const {
  // A node can go once all its descendants can: count subtrees free of outside references.
  int count = 0;
  std::function<bool(const Node*)> walk = [&](const Node* x) {
    bool all = true;
    for (auto& c : x->children) all = walk(c.get()) && all;
    if (x == root_.get()) return all;
    if (all && blocks_.refs(x->block) == 1) { ++count; return true; }
    return false;
  };
  walk(root_.get());
  return count;
}

std::vector<std::pair<std::vector<int32_t>, std::vector<int>>> RadixCache::dump() const {
  std::vector<std::pair<std::vector<int32_t>, std::vector<int>>> out;
  std::vector<int32_t> toks;
  std::vector<int> blks;
  std::function<void(const Node*)> walk = [&](const Node* x) {
    for (auto& c : x->children) {
      toks.insert(toks.end(), c->tokens.begin(), c->tokens.end());
      blks.push_back(c->block);
      if (c->children.empty()) out.emplace_back(toks, blks);
      walk(c.get());
      toks.resize(toks.size() - c->tokens.size());
      blks.pop_back();
    }
  };
  walk(root_.get());
  return out;
}

void RadixCache::clear() {
  std::function<void(Node*)> walk = [&](Node* x) {
    for (auto& c : x->children) {
      walk(c.get());
      blocks_.release(c->block);
    }
    x->children.clear();
  };
  walk(root_.get());
  n_nodes_ = 0;
}

}  // namespace ghostline::engine::runtime
