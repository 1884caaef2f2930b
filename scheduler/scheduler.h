// The scheduler: continuous batching counted in tokens (vLLM v1 style): each step hands requests
// tokens to compute within the token budget, max_num_seqs and the free KV blocks.
#ifndef MLKV_SCHEDULER_SCHEDULER_H_
#define MLKV_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "scheduler/kv_cache_manager.h"
#include "scheduler/request.h"
#include "scheduler/scheduler_config.h"
#include "scheduler/scheduler_output.h"
#include "scheduler/scheduler_stats.h"

namespace mlkv {

// One step = Schedule() -> the runner computes the scheduled tokens and samples ->
// UpdateFromOutput() -> TakeFinishedRequests(). Every request has num_computed_tokens catching
// up with its known tokens; a prompt chunk, a decode token, a prefix-cache hit (computed tokens
// for free) and a preemption (computed tokens dropped) are all moves of that one number.
//
// Policy:
//   - Running requests go first, in (priority, arrival) order, each taking
//     min(tokens left to compute, long_prefill_token_threshold, budget left).
//   - When a running request's blocks cannot be allocated, the last running request in that
//     order (least urgent priority, then latest arrival) is preempted by recompute, until the
//     allocation fits or the request preempted itself. Scheduled requests are never victims.
//   - Then waiting requests are admitted in (priority, arrival) order while budget,
//     max_num_seqs and blocks allow, starting from their cached prefix; the first that does not
//     fit stops admission (no overtaking). No admission in a step that preempted.
//   - Waiting requests never preempt running ones, whatever their priority.
//
// Invariants (CheckInvariants(); run after every update in debug builds): each live request is
// in exactly one of the waiting queue (kWaiting/kPreempted, no blocks, nothing computed) and the
// running list (kRunning, sorted, at most max_num_seqs); outside a step, a running request's
// table holds exactly its computed tokens and it has at least one token left to compute; the
// KV cache manager's invariants hold for the running tables.
//
// Not thread-safe: the engine thread owns it and serializes submissions and aborts into it.
class Scheduler {
 public:
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request, or says why not, dropping it and changing nothing else:
  //   InvalidArgument: empty id, empty prompt, a negative token id, max_tokens < 1,
  //     prompt or prompt + max_tokens beyond max_model_len, or a sequence the whole KV cache
  //     could never hold (it would wait forever);
  //   AlreadyExists: a live request has this id;
  //   ResourceExhausted: max_waiting requests already wait (try again later).
  absl::Status AddRequest(std::unique_ptr<Request> request);

  // Finishes a live request with kAbort (NotFound for an unknown or already finished id). Its
  // blocks are freed now, or, when it is in the step being run, when UpdateFromOutput() takes
  // that step back. Either way it comes out of TakeFinishedRequests().
  absl::Status AbortRequest(std::string_view id);
  // The same with another reason, e.g. kError when the engine fails a request.
  absl::Status FinishRequest(std::string_view id, FinishReason reason);

  // Decides the next step. An output with requests starts a step that UpdateFromOutput() must
  // end before the next Schedule() (calling it earlier is a bug: MLKV_CHECK); an empty one
  // starts nothing.
  SchedulerOutput Schedule();

  // Ends the step `output` started: advances num_computed_tokens; for each scheduled request
  // with needs_sample, appends sampled_token_ids[i] (aligned with output.scheduled; other
  // entries are ignored) and checks max_tokens, EOS unless ignore_eos, and stop ids; makes
  // newly full blocks cacheable; frees finished requests' blocks. Returns the tokens appended.
  // InvalidArgument, changing nothing, when `output` is not the step in flight or the sizes
  // differ.
  absl::StatusOr<std::vector<NewToken>> UpdateFromOutput(
      const SchedulerOutput& output, absl::Span<const int32_t> sampled_token_ids);

  // Hands over the requests finished since the last call, in the order they finished.
  std::vector<std::unique_ptr<Request>> TakeFinishedRequests();

  // A live (waiting or running) request, or nullptr.
  const Request* FindRequest(std::string_view id) const;
  bool HasUnfinishedRequests() const { return !requests_.empty(); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  bool step_in_flight() const { return in_flight_step_ != 0; }

  SchedulerStats GetStats() const;
  const SchedulerConfig& config() const { return config_; }
  const KvCacheManager& kv_cache() const { return kv_; }

  // Checks the invariants above; Internal error naming the first violation.
  absl::Status CheckInvariants() const;

 private:
  struct ByPrecedence {
    bool operator()(const Request* a, const Request* b) const { return Request::Precedes(*a, *b); }
  };

  explicit Scheduler(const SchedulerConfig& config);

  absl::Status ValidateNewRequest(const Request& request) const;
  // How many of `remaining` uncomputed tokens a request may compute with `budget` left (0: none).
  int32_t TokensToSchedule(int32_t remaining, int32_t budget) const;
  void AddScheduled(Request* request, int32_t num_new_tokens, SchedulerOutput* output);
  void ScheduleRunning(int32_t* budget, SchedulerOutput* output);
  void AdmitWaiting(int32_t* budget, SchedulerOutput* output);
  void Preempt(Request* request, SchedulerOutput* output);
  void InsertRunning(Request* request);
  void RemoveRunning(Request* request);
  // Frees the request's blocks, marks it finished and moves it to finished_.
  void Finish(Request* request, FinishReason reason);

  const SchedulerConfig config_;
  KvCacheManager kv_;
  // Owns every live request; the queues below point into it.
  absl::flat_hash_map<std::string, std::unique_ptr<Request>> requests_;
  absl::btree_set<Request*, ByPrecedence> waiting_;
  std::vector<Request*> running_;  // sorted by Request::Precedes
  std::vector<std::unique_ptr<Request>> finished_;
  std::vector<std::string> finished_ids_;  // since the last Schedule(), for its output
  // The step Schedule() started and UpdateFromOutput() has not ended (0: none), and what it
  // gave its requests, in output order.
  struct InFlight {
    Request* request;
    int32_t num_new_tokens;
  };
  int64_t in_flight_step_ = 0;
  std::vector<InFlight> in_flight_;
  int64_t next_step_id_ = 1;
  int64_t next_arrival_seq_ = 0;
  int32_t num_preempted_waiting_ = 0;
  SchedulerStats counters_;  // the since-start fields
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_SCHEDULER_H_
