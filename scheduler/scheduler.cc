// Scheduler: admission checks, the per-step token allocation with preemption, and updates.
#include "scheduler/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/check.h"
#include "common/status_macros.h"

namespace mlkv {
namespace {

// Debian's Abseil has its own string_view; the public API takes the standard one.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerConfig& config) {
  RETURN_IF_ERROR(config.Validate());
  return std::unique_ptr<Scheduler>(new Scheduler(config));
}

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config), kv_(config.block_size, config.num_blocks, config.enable_prefix_caching) {}

absl::Status Scheduler::ValidateNewRequest(const Request& request) const {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("request ", request.id(), ": ", parts...));
  };
  if (request.id().empty()) return absl::InvalidArgumentError("request id is empty");
  if (request.status() != RequestStatus::kWaiting || request.ever_scheduled_ ||
      request.num_output_tokens() > 0) {
    return invalid("was already submitted once (status ", RequestStatusName(request.status()), ")");
  }
  // Sizes as size_t / int64: a client's numbers may be anything.
  const size_t prompt_len = request.all_token_ids().size();
  const int64_t max_tokens = request.max_tokens();
  if (prompt_len == 0) return invalid("the prompt is empty");
  if (prompt_len > static_cast<size_t>(config_.max_model_len)) {
    return invalid("the prompt has ", prompt_len, " tokens, more than max_model_len (",
                   config_.max_model_len, ")");
  }
  for (int32_t token : request.all_token_ids()) {
    if (token < 0) return invalid("negative token id ", token, " in the prompt");
  }
  if (max_tokens < 1) return invalid("max_tokens must be at least 1, got ", max_tokens);
  if (static_cast<int64_t>(prompt_len) + max_tokens > config_.max_model_len) {
    return invalid("prompt (", prompt_len, " tokens) + max_tokens (", max_tokens,
                   ") exceeds max_model_len (", config_.max_model_len, ")");
  }
  // The last sampled token is never computed, so the cache holds at most this many.
  const int64_t max_cached_tokens = static_cast<int64_t>(prompt_len) + max_tokens - 1;
  if (kv_.BlocksFor(max_cached_tokens) > kv_.num_blocks()) {
    return invalid("needs up to ", kv_.BlocksFor(max_cached_tokens), " KV blocks (",
                   max_cached_tokens, " tokens) but the whole cache has ", kv_.num_blocks(),
                   " blocks (", static_cast<int64_t>(kv_.num_blocks()) * kv_.block_size(),
                   " tokens); it could never run: shorten the prompt or lower max_tokens");
  }
  if (requests_.contains(request.id())) {
    return absl::AlreadyExistsError(
        absl::StrCat("request ", request.id(), ": a live request already has this id"));
  }
  if (waiting_.size() >= static_cast<size_t>(config_.max_waiting)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request ", request.id(), ": the waiting queue is full (", config_.max_waiting,
                     " requests); try again later"));
  }
  return absl::OkStatus();
}

absl::Status Scheduler::AddRequest(std::unique_ptr<Request> request) {
  MLKV_CHECK(request != nullptr, "AddRequest(nullptr)");
  if (absl::Status status = ValidateNewRequest(*request); !status.ok()) {
    ++counters_.num_rejected;
    return status;
  }
  Request* r = request.get();
  r->arrival_seq_ = next_arrival_seq_++;
  // Room for the whole output: decode steps append without moving the tokens a step points at.
  r->token_ids_.reserve(r->token_ids_.size() + r->max_tokens());
  requests_.emplace(r->id(), std::move(request));
  waiting_.insert(r);
  return absl::OkStatus();
}

absl::Status Scheduler::AbortRequest(std::string_view id) {
  return FinishRequest(id, FinishReason::kAbort);
}

absl::Status Scheduler::FinishRequest(std::string_view id, FinishReason reason) {
  auto it = requests_.find(AsAbsl(id));
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("no live request has id '", AsAbsl(id), "'"));
  }
  Request* r = it->second.get();
  if (in_flight_step_ != 0 && r->last_scheduled_step_ == in_flight_step_) {
    // The runner is still reading its tokens and blocks: finish it when the step comes back.
    if (!r->pending_finish_) r->pending_finish_ = reason;
    return absl::OkStatus();
  }
  if (r->status_ == RequestStatus::kRunning) {
    RemoveRunning(r);
  } else {
    waiting_.erase(r);
    if (r->status_ == RequestStatus::kPreempted) --num_preempted_waiting_;
  }
  Finish(r, reason);
  return absl::OkStatus();
}

void Scheduler::Finish(Request* request, FinishReason reason) {
  kv_.Free(&request->block_table_);
  request->status_ = RequestStatus::kFinished;
  request->finish_reason_ = reason;
  finished_ids_.push_back(request->id());
  auto it = requests_.find(request->id());
  MLKV_CHECK(it != requests_.end(), "finishing request {} that is not live", request->id());
  finished_.push_back(std::move(it->second));
  requests_.erase(it);
  ++counters_.num_finished;
}

void Scheduler::InsertRunning(Request* request) {
  running_.insert(std::upper_bound(running_.begin(), running_.end(), request, ByPrecedence()),
                  request);
}

void Scheduler::RemoveRunning(Request* request) {
  auto it = std::find(running_.begin(), running_.end(), request);
  MLKV_CHECK(it != running_.end(), "request {} is not running", request->id());
  running_.erase(it);
}

void Scheduler::Preempt(Request* request, SchedulerOutput* output) {
  kv_.Free(&request->block_table_);
  request->num_computed_tokens_ = 0;
  request->status_ = RequestStatus::kPreempted;
  ++request->num_preemptions_;
  ++num_preempted_waiting_;
  ++counters_.num_preemptions;
  waiting_.insert(request);  // past max_waiting if need be: it was admitted once
  output->preempted_ids.push_back(request->id());
}

int32_t Scheduler::TokensToSchedule(int32_t remaining, int32_t budget) const {
  int32_t n = remaining;
  if (config_.long_prefill_token_threshold) {
    n = std::min(n, *config_.long_prefill_token_threshold);
  }
  if (!config_.enable_chunked_prefill && n > budget) return 0;
  return std::min(n, budget);
}

void Scheduler::AddScheduled(Request* request, int32_t num_new_tokens, SchedulerOutput* output) {
  const int32_t computed = request->num_computed_tokens_;
  output->scheduled.push_back(ScheduledRequest{
      .request = request,
      .num_computed_tokens = computed,
      .num_new_tokens = num_new_tokens,
      .token_ids = request->all_token_ids().subspan(computed, num_new_tokens),
      .block_table = request->block_table_.block_ids(),
      .needs_sample = computed + num_new_tokens == request->num_tokens(),
  });
  output->num_scheduled_tokens += num_new_tokens;
  request->last_scheduled_step_ = output->step_id;
  in_flight_.push_back(InFlight{request, num_new_tokens});
}

void Scheduler::ScheduleRunning(int32_t* budget, SchedulerOutput* output) {
  size_t i = 0;
  while (i < running_.size() && *budget > 0) {
    Request* r = running_[i];
    const int32_t n = TokensToSchedule(r->num_tokens() - r->num_computed_tokens_, *budget);
    if (n == 0) {  // a whole prompt that does not fit (no chunking): let later ones use it
      ++i;
      continue;
    }
    bool preempted_itself = false;
    while (!kv_.AllocateSlots(&r->block_table_, r->num_computed_tokens_ + n)) {
      // The tail is the least urgent; everything before r is already scheduled and stays.
      Request* victim = running_.back();
      running_.pop_back();
      Preempt(victim, output);
      if (victim == r) {
        preempted_itself = true;
        break;
      }
    }
    if (preempted_itself) break;  // r was the tail: nothing is left to schedule
    AddScheduled(r, n, output);
    *budget -= n;
    ++i;
  }
}

void Scheduler::AdmitWaiting(int32_t* budget, SchedulerOutput* output) {
  while (!waiting_.empty() && *budget > 0 &&
         running_.size() < static_cast<size_t>(config_.max_num_seqs)) {
    Request* r = *waiting_.begin();
    const CachedPrefix prefix =
        r->params().skip_prefix_cache ? CachedPrefix{} : kv_.FindCachedPrefix(r->all_token_ids());
    const int32_t n = TokensToSchedule(r->num_tokens() - prefix.num_tokens, *budget);
    if (n == 0) break;
    if (!kv_.AllocateSlots(&r->block_table_, prefix.num_tokens + n, prefix)) break;
    waiting_.erase(waiting_.begin());
    if (r->status_ == RequestStatus::kPreempted) --num_preempted_waiting_;
    r->num_computed_tokens_ = prefix.num_tokens;
    if (!r->ever_scheduled_) {
      r->ever_scheduled_ = true;
      r->num_cached_prompt_tokens_ = prefix.num_tokens;
      counters_.num_prompt_tokens += r->num_prompt_tokens();
    }
    r->status_ = RequestStatus::kRunning;
    InsertRunning(r);
    AddScheduled(r, n, output);
    *budget -= n;
  }
}

SchedulerOutput Scheduler::Schedule() {
  MLKV_CHECK(in_flight_step_ == 0, "Schedule() before UpdateFromOutput() ended step {}",
             in_flight_step_);
  SchedulerOutput output;
  output.step_id = next_step_id_++;
  output.finished_ids = std::move(finished_ids_);
  finished_ids_.clear();
  output.scheduled.reserve(running_.size() + 8);
  in_flight_.clear();
  in_flight_.reserve(running_.size() + 8);
  int32_t budget = config_.max_num_batched_tokens;
  ScheduleRunning(&budget, &output);
  // Blocks are short when someone was just preempted: admitting now would only thrash.
  if (output.preempted_ids.empty()) AdmitWaiting(&budget, &output);
  if (!output.scheduled.empty()) {
    in_flight_step_ = output.step_id;
    ++counters_.num_steps;
  }
  return output;
}

absl::StatusOr<std::vector<NewToken>> Scheduler::UpdateFromOutput(
    const SchedulerOutput& output, absl::Span<const int32_t> sampled_token_ids) {
  std::vector<NewToken> new_tokens;
  if (output.scheduled.empty()) return new_tokens;  // an empty output started no step
  if (in_flight_step_ == 0 || output.step_id != in_flight_step_ ||
      output.scheduled.size() != in_flight_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step ", output.step_id, " is not the step in flight (", in_flight_step_, ")"));
  }
  if (sampled_token_ids.size() != output.scheduled.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", output.step_id, " scheduled ", output.scheduled.size(),
                     " requests but ", sampled_token_ids.size(), " sampled tokens came back"));
  }
  new_tokens.reserve(in_flight_.size());
  bool any_finished = false;
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    Request* r = in_flight_[i].request;
    r->num_computed_tokens_ += in_flight_[i].num_new_tokens;
    counters_.num_computed_tokens += in_flight_[i].num_new_tokens;
    std::optional<FinishReason> finish = r->pending_finish_;
    if (!finish && r->num_computed_tokens_ == r->num_tokens()) {
      const int32_t token = sampled_token_ids[i];
      finish = r->AppendOutputToken(token);
      new_tokens.push_back(NewToken{r, token});
      ++counters_.num_generated_tokens;
    }
    kv_.CacheFullBlocks(&r->block_table_, r->all_token_ids(), r->num_computed_tokens_);
    if (finish) {
      Finish(r, *finish);
      any_finished = true;
    }
  }
  if (any_finished) {
    running_.erase(std::remove_if(running_.begin(), running_.end(),
                                  [](const Request* r) { return r->is_finished(); }),
                   running_.end());
  }
  in_flight_step_ = 0;
  in_flight_.clear();
#ifndef NDEBUG
  absl::Status invariants = CheckInvariants();
  MLKV_CHECK(invariants.ok(), "{}", invariants.ToString());
#endif
  return new_tokens;
}

std::vector<std::unique_ptr<Request>> Scheduler::TakeFinishedRequests() {
  return std::exchange(finished_, {});
}

const Request* Scheduler::FindRequest(std::string_view id) const {
  auto it = requests_.find(AsAbsl(id));
  return it == requests_.end() ? nullptr : it->second.get();
}

SchedulerStats Scheduler::GetStats() const {
  SchedulerStats stats = counters_;
  stats.num_running = num_running();
  stats.num_waiting = num_waiting();
  stats.num_preempted = num_preempted_waiting_;
  stats.kv = kv_.Usage();
  stats.prefix_cache = kv_.prefix_cache_stats();
  return stats;
}

absl::Status Scheduler::CheckInvariants() const {
  auto fail = [](auto&&... parts) { return absl::InternalError(absl::StrCat(parts...)); };
  if (waiting_.size() + running_.size() != requests_.size()) {
    return fail(waiting_.size(), " waiting + ", running_.size(), " running != ", requests_.size(),
                " live requests");
  }
  if (running_.size() > static_cast<size_t>(config_.max_num_seqs)) {
    return fail(running_.size(), " running requests exceed max_num_seqs");
  }
  auto live = [&](const Request* r) {
    auto it = requests_.find(r->id());
    return it != requests_.end() && it->second.get() == r;
  };
  int32_t num_preempted = 0;
  for (const Request* r : waiting_) {
    if (!live(r)) return fail("waiting request ", r->id(), " is not live");
    if (r->status() != RequestStatus::kWaiting && r->status() != RequestStatus::kPreempted) {
      return fail("waiting request ", r->id(), " is ", RequestStatusName(r->status()));
    }
    num_preempted += r->status() == RequestStatus::kPreempted;
    if (!r->block_table().empty() || r->num_computed_tokens() != 0) {
      return fail("waiting request ", r->id(), " holds blocks or computed tokens");
    }
  }
  if (num_preempted != num_preempted_waiting_) {
    return fail(num_preempted, " preempted requests wait, counted ", num_preempted_waiting_);
  }
  const bool in_step = in_flight_step_ != 0;
  std::vector<LiveTable> tables;
  tables.reserve(running_.size());
  for (size_t i = 0; i < running_.size(); ++i) {
    const Request* r = running_[i];
    if (!live(r)) return fail("running request ", r->id(), " is not live");
    if (r->status() != RequestStatus::kRunning) {
      return fail("running request ", r->id(), " is ", RequestStatusName(r->status()));
    }
    if (i > 0 && !Request::Precedes(*running_[i - 1], *r)) {
      return fail("running list out of order at ", r->id());
    }
    if (r->num_tokens() > config_.max_model_len || r->num_output_tokens() >= r->max_tokens()) {
      return fail("request ", r->id(), " ran past its length limits");
    }
    const int32_t computed = r->num_computed_tokens();
    if (!in_step &&
        (computed >= r->num_tokens() || r->block_table().num_blocks() != kv_.BlocksFor(computed))) {
      return fail("request ", r->id(), " has ", computed, " of ", r->num_tokens(),
                  " tokens computed in ", r->block_table().num_blocks(), " blocks");
    }
    tables.push_back(LiveTable{&r->block_table(), computed});
  }
  for (const auto& r : finished_) {
    if (!r->is_finished() || !r->finish_reason() || !r->block_table().empty()) {
      return fail("finished request ", r->id(), " is not fully finished");
    }
  }
  return kv_.CheckInvariants(tables);
}

}  // namespace mlkv
