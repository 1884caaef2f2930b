// A RequestObserver that gathers a request's tokens and result and lets another thread wait for
// the end: for command-line tools, benchmarks and tests (a server streams instead).
#ifndef MLKV_ENGINE_COLLECTING_OBSERVER_H_
#define MLKV_ENGINE_COLLECTING_OBSERVER_H_

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine_request.h"

namespace mlkv {

class CollectingObserver final : public RequestObserver {
 public:
  void OnTokens(const TokenDelta& delta) override {
    std::lock_guard<std::mutex> lock(mu_);
    token_ids_.insert(token_ids_.end(), delta.token_ids.begin(), delta.token_ids.end());
    logprobs_.insert(logprobs_.end(), delta.logprobs.begin(), delta.logprobs.end());
    text_ += delta.text;
    ++num_deltas_;
  }
  void OnFinished(const RequestResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = result;
    done_ = true;
    done_cv_.notify_all();
  }

  // Blocks until OnFinished, then returns the result.
  RequestResult Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_; });
    return result_;
  }
  // The streamed tokens (equal to the result's output once finished) and their logprobs.
  std::vector<int32_t> token_ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return token_ids_;
  }
  std::vector<TokenLogprob> logprobs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logprobs_;
  }
  // The streamed text, all deltas' texts concatenated.
  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  int num_deltas() const {
    std::lock_guard<std::mutex> lock(mu_);
    return num_deltas_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  std::vector<int32_t> token_ids_;
  std::vector<TokenLogprob> logprobs_;
  std::string text_;
  int num_deltas_ = 0;
  RequestResult result_;
  bool done_ = false;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_COLLECTING_OBSERVER_H_
