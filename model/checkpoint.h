// A model directory's tensors: model.safetensors, or the shards that
// model.safetensors.index.json lists, behind one name -> tensor lookup that reads as float32.
#ifndef MLKV_MODEL_CHECKPOINT_H_
#define MLKV_MODEL_CHECKPOINT_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/safetensors.h"

namespace mlkv {

inline constexpr char kSafetensorsFileName[] = "model.safetensors";
inline constexpr char kSafetensorsIndexFileName[] = "model.safetensors.index.json";

// Immutable after Open(): safe to read from several threads.
class Checkpoint {
 public:
  // Opens `model_dir`/model.safetensors when present (as transformers prefers it), else the
  // index. The index must map every tensor to a shard inside the directory that holds it, and
  // every shard's tensors must be in the index: a stale index is an error, not a guess.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const std::string& dir() const { return dir_; }
  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;
  bool Contains(std::string_view name) const { return index_.find(name) != index_.end(); }
  // NotFound naming the tensor and the directory when absent.
  absl::StatusOr<SafetensorsTensorInfo> Find(std::string_view name) const;
  // The tensor as float32, F16/BF16 converted. Other stored dtypes are an error naming the tensor.
  absl::StatusOr<std::vector<float>> ReadFloat(std::string_view name) const;
  // As above, and the stored shape must equal `expected_shape`, else an error like
  // "gpt_neox.layers.3.attention.query.weight: shape [64,32], expected [64,64] (in <file>)".
  absl::StatusOr<std::vector<float>> ReadFloat(std::string_view name,
                                               const std::vector<int64_t>& expected_shape) const;

 private:
  struct Entry {
    const SafetensorsFile* file;  // non-owning: one of files_
    const SafetensorsTensorInfo* info;
  };

  explicit Checkpoint(std::string dir) : dir_(std::move(dir)) {}
  absl::Status OpenIndex(const std::string& index_path);

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry, std::less<>> index_;
};

// "[64,32]": shapes as error messages print them.
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace mlkv

#endif  // MLKV_MODEL_CHECKPOINT_H_
