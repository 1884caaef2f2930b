// Test helper: Backend::WriteKvCache's padding rule (a row whose slot is negative writes nothing),
// checked through the Backend interface alone, so that one check serves every backend without
// knowing its cache layout (kernels/cpu/cpu_backend_test.cc, kernels/cuda/cuda_kernels_test.cc).
// For tests only.
#ifndef MLKV_KERNELS_TESTING_NEGATIVE_SLOTS_H_
#define MLKV_KERNELS_TESTING_NEGATIVE_SLOTS_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv::testing {

// Both pools of one sharing group, as bytes on the host.
struct PoolBytes {
  std::vector<uint8_t> k, v;
};

// Writes rows of k and v at `slots` through backend.WriteKvCache into a fresh pair of pools of
// `shape` (its pointers unused) that first hold the bytes `initial`, and returns the pools.
inline PoolBytes WriteIntoPools(Backend& backend, const KvCacheView& shape,
                                const std::vector<uint8_t>& initial, const std::vector<float>& k,
                                const std::vector<float>& v, const std::vector<int64_t>& slots) {
  const auto upload = [&backend](const void* host, size_t bytes) {
    auto buffer = backend.Allocate(bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    backend.CopyToDevice((*buffer)->data(), host, bytes);
    return std::move(*buffer);
  };
  auto k_pool = upload(initial.data(), initial.size());
  auto v_pool = upload(initial.data(), initial.size());
  auto d_k = upload(k.data(), k.size() * sizeof(float));
  auto d_v = upload(v.data(), v.size() * sizeof(float));
  auto d_slots = upload(slots.data(), slots.size() * sizeof(int64_t));
  KvCacheView cache = shape;
  cache.k_cache = k_pool->data();
  cache.v_cache = v_pool->data();
  StepBatchView batch;
  batch.num_tokens = std::ssize(slots);
  batch.slot_mapping = d_slots->as<int64_t>();
  backend.WriteKvCache(d_k->as<float>(), d_v->as<float>(), batch, cache);
  PoolBytes pools{std::vector<uint8_t>(initial.size()), std::vector<uint8_t>(initial.size())};
  backend.CopyToHost(pools.k.data(), k_pool->data(), initial.size());
  backend.CopyToHost(pools.v.data(), v_pool->data(), initial.size());
  return pools;
}

// The number of elements of `dtype` in `pool` whose bytes differ from `initial`'s.
inline int64_t ChangedElements(const std::vector<uint8_t>& pool,
                               const std::vector<uint8_t>& initial, DType dtype) {
  const size_t size = DTypeBytes(dtype);
  int64_t changed = 0;
  for (size_t i = 0; i < pool.size(); i += size) {
    changed += std::memcmp(pool.data() + i, initial.data() + i, size) != 0 ? 1 : 0;
  }
  return changed;
}

// A step whose rows 1, 3 and 4 are padding (slots -1 and -7), written into pools whose every byte
// is 0xFF (NaN in f32, f16 and bf16), must leave them bit-for-bit as the same step without its
// padding rows does, having changed exactly that step's elements; a step of padding alone must
// leave them untouched.
inline void ExpectNegativeSlotsWriteNothing(Backend& backend, DType dtype) {
  constexpr int64_t kNumBlocks = 3, kBlockSize = 4, kKvHeads = 2, kHeadDim = 5;
  constexpr int64_t kRowElems = kKvHeads * kHeadDim;
  const KvCacheView shape{nullptr, nullptr, dtype, kNumBlocks, kBlockSize, kKvHeads, kHeadDim};
  const std::vector<uint8_t> poison(kNumBlocks * kBlockSize * kRowElems * DTypeBytes(dtype), 0xFF);
  const std::vector<int64_t> slots = {5, -1, 0, -7, -1, 11};
  std::mt19937 rng(static_cast<unsigned>(dtype) + 1);
  const std::vector<float> k = RandomVector(slots.size() * kRowElems, rng),
                           v = RandomVector(slots.size() * kRowElems, rng);

  std::vector<int64_t> real_slots;
  std::vector<float> real_k, real_v;
  for (size_t t = 0; t < slots.size(); ++t) {
    if (slots[t] < 0) continue;
    real_slots.push_back(slots[t]);
    real_k.insert(real_k.end(), k.begin() + t * kRowElems, k.begin() + (t + 1) * kRowElems);
    real_v.insert(real_v.end(), v.begin() + t * kRowElems, v.begin() + (t + 1) * kRowElems);
  }
  const PoolBytes padded = WriteIntoPools(backend, shape, poison, k, v, slots);
  const PoolBytes unpadded = WriteIntoPools(backend, shape, poison, real_k, real_v, real_slots);
  // EXPECT_TRUE rather than EXPECT_EQ: a failure would otherwise print every byte of the pools.
  EXPECT_TRUE(padded.k == unpadded.k) << "K pool differs from the unpadded step's";
  EXPECT_TRUE(padded.v == unpadded.v) << "V pool differs from the unpadded step's";
  const int64_t written = std::ssize(real_slots) * kRowElems;
  EXPECT_EQ(ChangedElements(unpadded.k, poison, dtype), written);
  EXPECT_EQ(ChangedElements(unpadded.v, poison, dtype), written);

  const std::vector<int64_t> only_padding = {-1, -1, -7};
  const std::vector<float> rows(only_padding.size() * kRowElems, 1.0f);
  const PoolBytes untouched = WriteIntoPools(backend, shape, poison, rows, rows, only_padding);
  EXPECT_TRUE(untouched.k == poison) << "a step of padding changed the K pool";
  EXPECT_TRUE(untouched.v == poison) << "a step of padding changed the V pool";
}

}  // namespace mlkv::testing

#endif  // MLKV_KERNELS_TESTING_NEGATIVE_SLOTS_H_
