// RadixCache: the prefix KV cache, a radix tree over token ids whose edges are KV blocks.
//
// Each node below the root holds the tokens of one KV block: a full node exactly block_size
// tokens (and may have children), a partial node fewer (always a leaf, never written again).
// The tree holds one reference on every node's block (BlockManager). A lookup shares the full
// blocks of the longest cached prefix with the caller and names a block whose leading tokens
// also match, which the caller copies (copy-on-write) before writing past them. Unreferenced
// leaves (block refs == 1: only the tree) are evicted least-recently-used first.
// Thread-safety: none (the engine thread owns it).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/runtime/block_manager.h"

namespace ghostline::engine::runtime {

struct PrefixMatch {
  std::vector<int> blocks;    // full shared blocks, one reference each taken for the caller
  int partial_block = -1;     // a block whose first partial_tokens tokens match (referenced for
  int partial_tokens = 0;     // the caller, who copies it and then releases it), or -1
  int tokens(int block_size) const {
    return static_cast<int>(blocks.size()) * block_size + partial_tokens;
  }
};

class RadixCache {
 public:
  RadixCache(BlockManager& blocks, int block_size);
  ~RadixCache();
  RadixCache(const RadixCache&) = delete;
  RadixCache& operator=(const RadixCache&) = delete;

  // The longest cached prefix of tokens[0, max_tokens). References are taken on every block
  // returned; the caller releases them.
  PrefixMatch match(std::span<const int32_t> tokens, int max_tokens);

  // Records that blocks[i] holds the KV of tokens[i*B, (i+1)*B) (the last one possibly
  // partial). Blocks already cached under the same tokens stay; new ones gain a tree reference.
  // The caller keeps (and later releases) its own references.
  void insert(std::span<const int32_t> tokens, std::span<const int> blocks);

  // Evicts least-recently-used unreferenced leaves until n blocks were freed or none is left.
  // Returns the number of blocks freed.
  int evict(int n);

  int block_size() const { return block_size_; }
  int cached_blocks() const { return n_nodes_; }
  // Blocks only the tree references (they could be evicted now).
  int evictable_blocks() const;
  // Every cached path as (tokens, blocks), for tests and debugging.
  std::vector<std::pair<std::vector<int32_t>, std::vector<int>>> dump() const;
  void clear();

 private:
  struct Node;
  void remove_leaf(Node* node);
  BlockManager& blocks_;
  int block_size_;
  std::unique_ptr<Node> root_;
  uint64_t clock_ = 0;
  int n_nodes_ = 0;
};

}  // namespace ghostline::engine::runtime
