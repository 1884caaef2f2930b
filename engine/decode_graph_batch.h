// Decode steps as captured graphs (CUDA graphs) replay fixed sizes. This is the host side: the
// batch sizes steps are padded to, and the padded batch itself. A step of S sequences runs the
// graph of the smallest bucket >= S; its extra rows are padding that neither writes the KV cache
// nor reaches the host, and every row's token comes from one SampleRows (temperature 0 for the
// greedy rows and the padding), so that one graph serves any mix of greedy and sampled requests.
#ifndef MLKV_ENGINE_DECODE_GRAPH_BATCH_H_
#define MLKV_ENGINE_DECODE_GRAPH_BATCH_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/step_batch.h"

namespace mlkv {

// 1, 2, 4, then every multiple of 8 up to 256, then every multiple of 16, up to `max_batch` (which
// is always the last bucket). Small steps waste at most a few padded rows, large ones at most
// 1/16 of the batch; about 50 graphs for 512 sequences. Empty when max_batch < 1.
std::vector<int64_t> DecodeGraphBuckets(int64_t max_batch);

// The smallest bucket >= num_seqs; nullopt when num_seqs exceeds the largest (the step then runs
// eagerly). `buckets` ascending.
std::optional<int64_t> BucketFor(const std::vector<int64_t>& buckets, int64_t num_seqs);

// Whether a graph can run `batch`: one new token per sequence, and only tokens wanted back (no
// logits rows: those go to the host whole, which the eager path does).
bool IsDecodeStep(const StepBatch& batch);

// `batch` (a decode step of S <= bucket sequences, block tables of at most table_width entries)
// padded to `bucket` sequences with block tables of table_width entries, into `padded` (reused:
// no allocation once warm). Row r < S is the batch's row r; the others take token 0 at position
// 0 with a context of one token read from block 0, and slot -1, which writes nothing. Every row
// is a sample row, in row order: a sample row keeps its parameters, an argmax row and the padding
// get temperature 0 (the argmax).
void PadDecodeBatch(const StepBatch& batch, int64_t bucket, int64_t table_width, StepBatch* padded);

}  // namespace mlkv

#endif  // MLKV_ENGINE_DECODE_GRAPH_BATCH_H_
