// Opening a model directory's safetensors files and reading tensors as float32; see checkpoint.h.
#include "model/checkpoint.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace mlkv {
namespace {

namespace fs = std::filesystem;

// A shard name must stay inside the model directory. The check is lexical on purpose: Hugging
// Face cache snapshots are symlinks into a blobs/ folder outside the directory, which is fine.
bool StaysInside(const std::string& relative) {
  const fs::path p(relative);
  if (relative.empty() || p.is_absolute() || p.has_root_name()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

absl::Status WithContext(const absl::Status& status, const std::string& context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint(model_dir));
  const fs::path dir(model_dir);
  std::error_code ec;
  const fs::path single = dir / kSafetensorsFileName;
  const fs::path index = dir / kSafetensorsIndexFileName;
  if (fs::exists(single, ec)) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single.string()));
    for (const auto& [name, info] : file->tensors()) {
      checkpoint->index_.emplace(name, Entry{file.get(), &info});
    }
    checkpoint->files_.push_back(std::move(file));
  } else if (fs::exists(index, ec)) {
    RETURN_IF_ERROR(checkpoint->OpenIndex(index.string()));
  } else {
    return absl::NotFoundError(absl::StrCat(model_dir, ": has neither ", kSafetensorsFileName,
                                            " nor ", kSafetensorsIndexFileName));
  }
  return checkpoint;
}

absl::Status Checkpoint::OpenIndex(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", index_path));
  const nlohmann::json index = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a JSON object"));
  }
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": \"weight_map\" is missing or not an object"));
  }
  // Open each shard once, then check the index and the shards agree in both directions.
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map entry for \"", name, "\" is not a file name"));
    }
    const std::string shard_name = shard.get<std::string>();
    if (!StaysInside(shard_name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": shard \"", shard_name, "\" of tensor \"", name,
                       "\" is not a path inside the model directory"));
    }
    auto it = shards.find(shard_name);
    if (it == shards.end()) {
      const std::string shard_path = (fs::path(dir_) / shard_name).string();
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(shard_path);
      if (!file.ok()) {
        return WithContext(file.status(),
                           absl::StrCat(index_path, ": shard for tensor \"", name, "\""));
      }
      it = shards.emplace(shard_name, file->get()).first;
      files_.push_back(std::move(*file));
    }
    const SafetensorsTensorInfo* info = it->second->Find(name);
    if (info == nullptr) {
      return absl::NotFoundError(absl::StrCat(index_path, ": tensor \"", name, "\" is listed in ",
                                              shard_name, " but that shard does not contain it"));
    }
    index_.emplace(name, Entry{it->second, info});
  }
  for (const auto& [shard_name, file] : shards) {
    for (const auto& [name, info] : file->tensors()) {
      auto entry = index_.find(name);
      if (entry == index_.end() || entry->second.file != file) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": shard ", shard_name, " holds tensor \"", name,
                         "\" which the index does not map to it (stale index?)"));
      }
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, entry] : index_) names.push_back(name);
  return names;
}

absl::StatusOr<SafetensorsTensorInfo> Checkpoint::Find(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat(std::string(name), ": tensor missing from the checkpoint in ", dir_));
  }
  return *it->second.info;
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadFloat(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(
        absl::StrCat(std::string(name), ": tensor missing from the checkpoint in ", dir_));
  }
  const auto& [file, info] = it->second;
  if (!info->dtype.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": dtype ", info->dtype_name,
                                                   " is not supported (F32, F16, BF16 are) in ",
                                                   file->path()));
  }
  return DecodeFloats(file->Bytes(*info), *info->dtype);
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadFloat(
    std::string_view name, const std::vector<int64_t>& expected_shape) const {
  auto it = index_.find(name);
  if (it != index_.end() && it->second.info->shape != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(name), ": shape ", ShapeString(it->second.info->shape), ", expected ",
        ShapeString(expected_shape), " (in ", it->second.file->path(), ")"));
  }
  return ReadFloat(name);
}

}  // namespace mlkv
