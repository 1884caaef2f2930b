// The serving engine: requests are submitted and aborted from any thread; one engine thread owns
// the scheduler, the model and the KV cache, and runs schedule -> run -> sample -> update steps
// for as long as there is work, reporting each request's tokens to its observer.
#ifndef MLKV_ENGINE_ENGINE_H_
#define MLKV_ENGINE_ENGINE_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_monitor.h"
#include "engine/engine_request.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/model_runner.h"
#include "engine/output_text.h"
#include "kernels/backend.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {

// Where sampled requests without penalties or logprobs draw their tokens.
enum class SamplingPlacement {
  // The engine's choice (Engine::RunStep): the host on every backend (docs/testing.md, "GPU",
  // says why the backend is not yet chosen on GPUs).
  kAuto,
  // On the backend (Backend::SampleRows): only the token leaves a GPU, not 50k logits.
  kBackend,
  // On the host (SequenceSampler), as every other sampled request.
  kHost,
};

struct EngineOptions {
  // Scheduling limits; block_size and num_blocks also size the KV cache (plan num_blocks with
  // PlanKvCapacity).
  SchedulerConfig scheduler;
  DType kv_dtype = DType::kF32;
  uint64_t seed = 0;  // sampling seed of requests that set none (mixed with an arrival counter)
  // The two placements draw differently (both exactly from the filtered distribution), so a
  // seed reproduces a sampled output on one placement only.
  SamplingPlacement sampling_placement = SamplingPlacement::kAuto;
  // Decode steps run padded to a bucket and, where the backend captures graphs (CUDA), as
  // replayed graphs (Model::EnableDecodeGraphs). Off by default (docs/testing.md, "GPU").
  bool decode_graphs = false;
  // The model's tokenizer: text prompts, text deltas and stop strings. Null: token ids only
  // (a text prompt or a stop string is then InvalidArgument).
  std::shared_ptr<const Tokenizer> tokenizer;
  // Sees every request's tokens and end (metrics, logs). Null: none.
  std::shared_ptr<EngineMonitor> monitor;
};

struct EngineStats {
  SchedulerStats scheduler;
  int64_t num_kv_groups = 0;  // every block holds one K and one V slab per group
  int64_t block_bytes = 0;    // over all groups
  int64_t num_steps = 0;
  double step_seconds_total = 0.0, last_step_seconds = 0.0, max_step_seconds = 0.0;
  bool accepting = true;
};

class Engine {
 public:
  // Takes ownership of the backend and of the model running on it, allocates the KV cache and
  // starts the engine thread.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options,
                                                        std::unique_ptr<Backend> backend,
                                                        std::unique_ptr<Model> model);
  // Aborts whatever is still running and joins the engine thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request; returns its id. Errors, with nothing queued: InvalidArgument naming the
  // field, AlreadyExists (a live request has the id), ResourceExhausted (the waiting queue is
  // full), Unavailable (the engine no longer accepts requests). A request that fails later
  // (e.g. it can never fit the cache) ends with OnFinished and an error status. A prompt_text
  // is encoded here, on the caller's thread and outside the engine's lock. Thread-safe.
  absl::StatusOr<std::string> Submit(EngineRequest request);
  // Ends a live request with kAbort within one step; NotFound for an unknown id. Thread-safe.
  absl::Status Abort(const std::string& request_id);

  // Refuses new requests from now on (Unavailable); running ones go on.
  void StopAccepting();
  // Waits until no request is live or `timeout` passes; true when idle.
  bool WaitIdle(absl::Duration timeout);
  // Aborts every live request and stops the engine thread. Idempotent.
  void Shutdown();

  EngineStats GetStats() const;
  const ModelConfig& model_config() const { return model_->config(); }
  // Null when the engine has no tokenizer.
  const Tokenizer* tokenizer() const { return options_.tokenizer.get(); }

 private:
  struct LiveRequest;
  // A request Submit accepted, on its way to the engine thread.
  struct Submission {
    EngineRequest request;
    absl::Time arrival;
    std::optional<OutputText> text;  // set when the engine has a tokenizer
  };
  Engine(const EngineOptions& options, std::unique_ptr<Backend> backend,
         std::unique_ptr<Model> model);

  // Encodes prompt_text into prompt_token_ids and checks the text fields (any thread).
  absl::StatusOr<std::optional<OutputText>> PrepareText(EngineRequest* request) const;
  absl::Status ValidateRequest(const EngineRequest& request) const;
  void Loop();
  // Whether the engine thread has something to do: a stop, submissions, aborts, or a step that
  // is `step_due` (the scheduler's state, read by the caller on the engine thread).
  bool HasWork(bool step_due) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves submissions and aborts from the inbox into the scheduler (engine thread).
  void TakeInbox(std::deque<Submission>* submissions, std::vector<std::string>* aborts);
  void Admit(Submission submission);
  // One schedule -> run -> sample -> update step; false when nothing could be scheduled.
  absl::StatusOr<bool> RunStep();
  // Reads one scheduled request's output rows: appends its prompt logprobs and, when the step
  // reached its last known token, returns the next token (and its logprobs when asked for). It
  // touches only `live`, so RunStep runs it for many requests in parallel.
  static void ReadRows(const ScheduledRequest& s, const std::vector<RowLogits>& rows,
                       LiveRequest& live, int32_t* token, std::optional<TokenLogprob>* logprob);
  void ReportFinished();
  // Reports the end of `live` (request id and finish time filled in here) and forgets it.
  void Finish(LiveRequest& live, RequestResult result);
  void FailAll(const absl::Status& status);

  const EngineOptions options_;
  std::unique_ptr<Backend> backend_;  // declared before model_ and cache_: destroyed after them
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<Scheduler> scheduler_;                                 // engine thread only
  std::unique_ptr<ModelRunner> runner_;                                  // engine thread only
  absl::flat_hash_map<std::string, std::unique_ptr<LiveRequest>> live_;  // engine thread only

  mutable absl::Mutex mu_;
  absl::CondVar wake_;  // work arrived, or stop
  absl::CondVar idle_;  // a request finished
  std::deque<Submission> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> abort_inbox_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> live_ids_ ABSL_GUARDED_BY(mu_);  // submitted, not finished
  int64_t next_request_number_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Published each step (accepting is filled in from accepting_ by GetStats).
  EngineStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_ENGINE_H_
