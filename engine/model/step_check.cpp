// check_step: the checks every backend's forward() makes of a StepBatch before it runs.
#include <string>

#include "engine/model.h"

namespace ghostline::engine {

Expected<void> check_step(const StepBatch& b, int vocab_size, int64_t max_position, int block_size, int n_blocks) {
  int64_t total = 0;
  for (const auto& s : b.seqs) {
    if (s.n_past < 0 || s.n_new < 0) return Error(ErrorCode::InvalidArgument, "forward: negative n_past or n_new");
    const int64_t end = static_cast<int64_t>(s.n_past) + s.n_new;
    if (end > max_position)
      return Error(ErrorCode::InvalidArgument, "forward: sequence of " + std::to_string(end) + " tokens exceeds max_position_embeddings (" +
                                                   std::to_string(max_position) + ")");
    const int64_t need = (end + block_size - 1) / block_size;
    if (static_cast<int64_t>(s.block_table.size()) < need)
      return Error(ErrorCode::InvalidArgument, "forward: block table of " + std::to_string(s.block_table.size()) + " blocks cannot hold " +
                                                   std::to_string(end) + " positions");
    for (int64_t blk = 0; blk < need; ++blk)
      if (s.block_table[blk] < 0 || s.block_table[blk] >= n_blocks)
        return Error(ErrorCode::InvalidArgument, "forward: block id " + std::to_string(s.block_table[blk]) + " outside the " +
                                                     std::to_string(n_blocks) + " allocated blocks");
    total += s.n_new;
  }
  if (total != static_cast<int64_t>(b.tokens.size()))
    return Error(ErrorCode::InvalidArgument, "forward: the sequences' n_new add up to " + std::to_string(total) + " but the batch has " +
                                                 std::to_string(b.tokens.size()) + " tokens");
  for (auto tok : b.tokens)
    if (tok < 0 || tok >= vocab_size)
      return Error(ErrorCode::InvalidArgument, "forward: token id " + std::to_string(tok) + " outside the vocabulary [0, " +
                                                   std::to_string(vocab_size) + ")");
  return ok();
}

}  // namespace ghostline::engine
