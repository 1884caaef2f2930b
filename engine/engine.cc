// The engine thread and the thread-safe entry points; see engine.h.
#include "engine/engine.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "engine/log_softmax.h"
#include "engine/model_workspace.h"
#include "engine/sampler.h"
#include "spdlog/spdlog.h"

namespace mlkv {

namespace {
constexpr int32_t kMaxTopLogprobs = 20;

// The sampled token's log-probability under the raw logits, and the `top` most likely tokens'
// (highest logit first, the lower id on ties). One pass for the normalizer; the vocabulary is
// ranked only when top > 0 (0, the CLI's default, asks for the sampled token's alone).
TokenLogprob LogprobsOf(std::span<const float> logits, int32_t token, int32_t top) {
  const double log_normalizer = LogSumExp(logits);
  auto logprob = [&](int32_t t) { return static_cast<float>(logits[t] - log_normalizer); };
  TokenLogprob entry{token, logprob(token), {}};
  const size_t n = std::min<size_t>(top, logits.size());
  if (n == 0) return entry;
  std::vector<int32_t> order(logits.size());
  for (size_t t = 0; t < order.size(); ++t) order[t] = static_cast<int32_t>(t);
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t t = 0; t < n; ++t) entry.top.emplace_back(order[t], logprob(order[t]));
  return entry;
}
}  // namespace

struct Engine::LiveRequest {
  explicit LiveRequest(Submission& s)
      : id(s.request.request_id),
        observer(s.request.observer),
        sampler(s.request.sampling, /*default_seed=*/0),  // Submit always sets sampling.seed
        top_logprobs(s.request.top_logprobs),
        wants_prompt_logprobs(s.request.prompt_logprobs),
        text(std::move(s.text)),
        last_token_time(s.arrival) {
    timings.arrival = s.arrival;
  }

  std::string id;
  std::shared_ptr<RequestObserver> observer;
  SequenceSampler sampler;
  std::optional<int32_t> top_logprobs;
  bool wants_prompt_logprobs;
  std::vector<float> prompt_logprobs;      // grows in position order; survives preemption
  absl::Status error;                      // why the engine failed it, if it did
  std::optional<OutputText> text;          // when the engine has a tokenizer
  std::optional<std::string> stop_string;  // the stop string that ended it, once one matched
  RequestTimings timings;
  absl::Time last_token_time;  // when its latest tokens were sampled (arrival before any)
};

Engine::Engine(const EngineOptions& options, std::unique_ptr<Backend> backend,
               std::unique_ptr<Model> model)
    : options_(options), backend_(std::move(backend)), model_(std::move(model)) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options,
                                                       std::unique_ptr<Backend> backend,
                                                       std::unique_ptr<Model> model) {
  if (options.scheduler.max_model_len > model->config().max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_model_len ", options.scheduler.max_model_len, " exceeds the model's ",
                     "max_position_embeddings ", model->config().max_position_embeddings));
  }
  std::unique_ptr<Engine> engine(new Engine(options, std::move(backend), std::move(model)));
  ASSIGN_OR_RETURN(engine->scheduler_, Scheduler::Create(options.scheduler));
  // Every step the scheduler can form gets its workspace now, before the KV pool: a device too
  // small for the largest step fails at start-up, not mid-serving, and no step allocates.
  RETURN_IF_ERROR(engine->model_->ReserveWorkspace(LargestStep(options.scheduler)));
  // The same for the backend's scratch (the CUDA backend's narrowed GEMM inputs and split-KV
  // partial results), which an op would otherwise allocate mid-serving from what the KV pool left.
  RETURN_IF_ERROR(engine->backend_->ReserveScratch(
      LargestStepOps(engine->model_->config(), engine->model_->weight_dtype(), options.kv_dtype,
                     options.scheduler)));
  if (options.decode_graphs) RETURN_IF_ERROR(engine->model_->EnableDecodeGraphs());
  ASSIGN_OR_RETURN(engine->cache_, KvCache::Create(engine->model_->config(),
                                                   {options.scheduler.block_size,
                                                    options.scheduler.num_blocks, options.kv_dtype},
                                                   engine->backend_.get()));
  engine->runner_ = std::make_unique<ModelRunner>(engine->model_.get(), engine->cache_.get());
  {
    // No other thread sees the engine yet; the lock is for the thread-safety analysis.
    absl::MutexLock lock(&engine->mu_);
    engine->stats_.num_kv_groups = engine->model_->config().num_kv_groups();
    engine->stats_.block_bytes =
        KvCache::BlockBytes(engine->model_->config(), engine->cache_->options());
    engine->stats_.scheduler = engine->scheduler_->GetStats();
  }
  engine->thread_ = std::thread([e = engine.get()] { e->Loop(); });
  return engine;
}

Engine::~Engine() { Shutdown(); }

absl::StatusOr<std::optional<OutputText>> Engine::PrepareText(EngineRequest* r) const {
  const Tokenizer* tokenizer = options_.tokenizer.get();
  if (r->prompt_text) {
    if (!r->prompt_token_ids.empty()) {
      return absl::InvalidArgumentError(
          "prompt_text: give either prompt_text or prompt token ids, not both");
    }
    if (tokenizer == nullptr) {
      return absl::InvalidArgumentError(
          "prompt_text: the model has no tokenizer; send prompt token ids instead");
    }
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(*r->prompt_text);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("prompt_text: ", ids.status().message()));
    }
    if (ids->empty()) return absl::InvalidArgumentError("prompt_text: is empty");
    r->prompt_token_ids = *std::move(ids);
  }
  if (tokenizer == nullptr) {
    if (!r->stop_strings.empty()) {
      return absl::InvalidArgumentError(
          "stop: stop strings need a tokenizer, and the model has none (use stop token ids)");
    }
    return std::nullopt;
  }
  return OutputText::Create(tokenizer, r->stop_strings);
}

absl::Status Engine::ValidateRequest(const EngineRequest& r) const {
  const ModelConfig& config = model_->config();
  if (r.observer == nullptr) return absl::InvalidArgumentError("observer: is required");
  if (r.prompt_token_ids.empty()) return absl::InvalidArgumentError("prompt: is empty");
  for (int32_t token : r.prompt_token_ids) {
    if (token < 0 || token >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt: token id ", token, " is outside the vocabulary [0, ", config.vocab_size, ")"));
    }
  }
  for (int32_t token : r.stop_token_ids) {
    if (token < 0 || token >= config.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids: ", token, " is outside the vocabulary"));
    }
  }
  const int64_t max_len = options_.scheduler.max_model_len;
  if (r.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens: must be at least 1, got ", r.max_tokens));
  }
  if (static_cast<int64_t>(r.prompt_token_ids.size()) + r.max_tokens > max_len) {
    return absl::InvalidArgumentError(absl::StrCat("prompt (", r.prompt_token_ids.size(),
                                                   " tokens) + max_tokens (", r.max_tokens,
                                                   ") exceeds the maximum model length ", max_len));
  }
  if (r.top_logprobs && (*r.top_logprobs < 0 || *r.top_logprobs > kMaxTopLogprobs)) {
    return absl::InvalidArgumentError(
        absl::StrCat("logprobs: must be in [0, ", kMaxTopLogprobs, "], got ", *r.top_logprobs));
  }
  return r.sampling.Validate();
}

absl::StatusOr<std::string> Engine::Submit(EngineRequest request) {
  const absl::Time arrival = absl::Now();
  // Encoding is the slow part of a submission: done before taking mu_, which the engine thread
  // needs every step.
  ASSIGN_OR_RETURN(std::optional<OutputText> text, PrepareText(&request));
  RETURN_IF_ERROR(ValidateRequest(request));
  absl::MutexLock lock(&mu_);
  if (!accepting_) return absl::UnavailableError("the engine is shutting down");
  const int64_t number = next_request_number_++;
  if (request.request_id.empty()) request.request_id = absl::StrCat("req-", number);
  if (live_ids_.contains(request.request_id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("request id \"", request.request_id, "\" is already live"));
  }
  if (stats_.scheduler.num_waiting + static_cast<int64_t>(inbox_.size()) >=
      options_.scheduler.max_waiting) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the waiting queue is full (", options_.scheduler.max_waiting, " requests)"));
  }
  // A seed for every request, so that sampling never depends on which batch it landed in.
  if (!request.sampling.seed) request.sampling.seed = options_.seed + static_cast<uint64_t>(number);
  live_ids_.insert(request.request_id);
  std::string id = request.request_id;
  inbox_.push_back(Submission{std::move(request), arrival, std::move(text)});
  wake_.Signal();
  return id;
}

absl::Status Engine::Abort(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  if (!live_ids_.contains(request_id)) {
    return absl::NotFoundError(absl::StrCat("no live request \"", request_id, "\""));
  }
  abort_inbox_.push_back(request_id);
  wake_.Signal();
  return absl::OkStatus();
}

void Engine::StopAccepting() {
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

bool Engine::WaitIdle(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (!live_ids_.empty()) {
    if (idle_.WaitWithDeadline(&mu_, deadline)) return live_ids_.empty();
  }
  return true;
}

void Engine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    accepting_ = false;
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::GetStats() const {
  absl::MutexLock lock(&mu_);
  EngineStats stats = stats_;
  stats.accepting = accepting_;
  return stats;
}

void Engine::Admit(Submission submission) {
  EngineRequest& request = submission.request;
  RequestParams params;
  params.max_tokens = request.max_tokens;
  params.eos_token_id = static_cast<int32_t>(model_->config().eos_token_id);
  params.ignore_eos = request.ignore_eos;
  params.stop_token_ids = request.stop_token_ids;
  params.priority = request.priority;
  // Prompt logprobs need a row for every prompt token, so cached blocks cannot stand in.
  params.skip_prefix_cache = request.prompt_logprobs;
  auto live = std::make_unique<LiveRequest>(submission);
  const int32_t num_prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size());
  absl::Status added = scheduler_->AddRequest(
      std::make_unique<Request>(live->id, std::move(request.prompt_token_ids), std::move(params)));
  if (!added.ok()) {
    RequestResult result;
    result.status = added;
    result.num_prompt_tokens = num_prompt_tokens;
    Finish(*live, std::move(result));
    return;
  }
  live_.emplace(live->id, std::move(live));
}

void Engine::TakeInbox(std::deque<Submission>* submissions, std::vector<std::string>* aborts) {
  for (Submission& s : *submissions) Admit(std::move(s));
  for (const std::string& id : *aborts) {
    // The request may have finished since Abort() was called: nothing left to do then.
    scheduler_->AbortRequest(id).IgnoreError();
  }
}

bool Engine::HasWork(bool step_due) const {
  return stopping_ || !inbox_.empty() || !abort_inbox_.empty() || step_due;
}

void Engine::Loop() {
  backend_->AttachThread();
  bool idle_step = false;  // the last step scheduled nothing although requests are live
  while (true) {
    std::deque<Submission> submissions;
    std::vector<std::string> aborts;
    bool stop = false;
    {
      absl::MutexLock lock(&mu_);
      const bool step_due = scheduler_->HasUnfinishedRequests() && !idle_step;
      // A step that scheduled nothing waits for news, but not forever: blocks freed by aborts
      // reach the scheduler only through it.
      if (idle_step) {
        const absl::Time deadline = absl::Now() + absl::Milliseconds(1);
        while (!HasWork(step_due) && !wake_.WaitWithDeadline(&mu_, deadline)) {
        }
      } else {
        while (!HasWork(step_due)) wake_.Wait(&mu_);
      }
      submissions.swap(inbox_);
      aborts.swap(abort_inbox_);
      stop = stopping_;
    }
    TakeInbox(&submissions, &aborts);
    if (stop) {
      for (const auto& [id, live] : live_) scheduler_->AbortRequest(id).IgnoreError();
      ReportFinished();
      break;
    }
    idle_step = false;
    if (scheduler_->HasUnfinishedRequests()) {
      absl::StatusOr<bool> ran = RunStep();
      if (!ran.ok()) {
        spdlog::error("engine step failed: {}", ran.status().ToString());
        FailAll(ran.status());
      } else {
        idle_step = !*ran;
      }
    }
    {
      // Published before the observers hear of finished requests, so that what a client sees
      // after its request ends already counts the freed blocks.
      absl::MutexLock lock(&mu_);
      stats_.scheduler = scheduler_->GetStats();
    }
    ReportFinished();
  }
}

void Engine::ReadRows(const ScheduledRequest& s, const std::vector<RowLogits>& rows,
                      LiveRequest& live, int32_t* token, std::optional<TokenLogprob>* logprob) {
  const auto prompt = s.request->prompt_token_ids();
  for (const RowLogits& row : rows) {
    const bool scores_prompt = live.wants_prompt_logprobs &&
                               static_cast<size_t>(row.position) + 1 < prompt.size() &&
                               row.position == static_cast<int32_t>(live.prompt_logprobs.size());
    if (scores_prompt) {
      live.prompt_logprobs.push_back(LogProbability(row.logits, prompt[row.position + 1]));
    }
  }
  if (!s.needs_sample) return;
  const RowLogits& last = rows.back();
  if (last.logits.empty()) {  // the backend took the token (argmax or its own draw)
    *token = last.token;
    return;
  }
  std::vector<float> scratch(last.logits.begin(), last.logits.end());
  *token = live.sampler.Sample(scratch, prompt, s.request->output_token_ids());
  if (live.top_logprobs) *logprob = LogprobsOf(last.logits, *token, *live.top_logprobs);
}

absl::StatusOr<bool> Engine::RunStep() {
  const auto start = std::chrono::steady_clock::now();
  const absl::Time step_start = absl::Now();
  const SchedulerOutput output = scheduler_->Schedule();
  if (output.empty()) return false;

  std::vector<RowRequest> rows(output.scheduled.size());
  std::vector<LiveRequest*> lives(output.scheduled.size());
  for (size_t i = 0; i < output.scheduled.size(); ++i) {
    LiveRequest* live = live_.at(output.scheduled[i].request->id()).get();
    lives[i] = live;
    if (live->timings.first_scheduled == absl::InfinitePast()) {
      live->timings.first_scheduled = step_start;
    }
    if (live->wants_prompt_logprobs) {
      rows[i].prompt_logprobs_from = static_cast<int32_t>(live->prompt_logprobs.size());
    }
    const SamplingParams& sampling = live->sampler.params();
    if (!live->top_logprobs) {
      rows[i].greedy_token_only = sampling.is_plain_greedy();
      // kAuto is the host until the CUDA sampling kernel has run on a GPU (SamplingPlacement).
      const bool on_backend = options_.sampling_placement == SamplingPlacement::kBackend;
      if (on_backend && !sampling.is_greedy() && !sampling.has_penalties()) {
        // The draw's index in the request's stream is the number of tokens it has output, so a
        // preempted and recomputed request continues the same stream.
        rows[i].backend_sampling = RowSampling{
            sampling.temperature, sampling.top_k,
            sampling.top_p,       sampling.min_p,
            *sampling.seed,       output.scheduled[i].request->output_token_ids().size()};
      }
    }
  }
  absl::Status ran = runner_->Run(output, rows);
  const int64_t num_scheduled = static_cast<int64_t>(output.scheduled.size());
  std::vector<int32_t> sampled(num_scheduled, 0);
  std::vector<std::optional<TokenLogprob>> token_logprobs(num_scheduled);
  if (ran.ok()) {
    // Sampling a 50k vocabulary takes ~0.1 ms a row, a GPU step's worth at batch 64, and each
    // request's rows touch only its own state: requests sample in parallel, with results that
    // do not depend on the thread count (each has its own random stream).
    int64_t with_logits = 0;  // requests with rows to read on the host (not greedy-token-only)
    for (int64_t i = 0; i < num_scheduled; ++i) {
      const std::vector<RowLogits>& rows = runner_->Rows(i);
      with_logits += std::any_of(rows.begin(), rows.end(),
                                 [](const RowLogits& row) { return !row.logits.empty(); });
    }
#pragma omp parallel for schedule(dynamic) if (with_logits > 1)
    for (int64_t i = 0; i < num_scheduled; ++i) {
      ReadRows(output.scheduled[i], runner_->Rows(i), *lives[i], &sampled[i], &token_logprobs[i]);
    }
  }
  absl::flat_hash_map<const Request*, TokenLogprob> logprobs;
  for (int64_t i = 0; i < num_scheduled; ++i) {
    if (token_logprobs[i]) {
      logprobs.emplace(output.scheduled[i].request, *std::move(token_logprobs[i]));
    }
  }
  if (!ran.ok()) {
    // The model failed the whole step: its requests end with the error, the step is closed.
    for (size_t i = 0; i < output.scheduled.size(); ++i) {
      lives[i]->error = ran;
      scheduler_->FinishRequest(output.scheduled[i].request->id(), FinishReason::kError)
          .IgnoreError();
    }
  }
  ASSIGN_OR_RETURN(std::vector<NewToken> new_tokens, scheduler_->UpdateFromOutput(output, sampled));
  const absl::Time now = absl::Now();
  // One new token per sampled request: a step samples each request at most once.
  for (const NewToken& t : new_tokens) {
    LiveRequest& live = *live_.at(t.request->id());
    TokenDelta delta;
    delta.token_ids.push_back(t.token_id);
    if (auto it = logprobs.find(t.request); it != logprobs.end()) {
      delta.logprobs.push_back(std::move(it->second));
    }
    if (live.text) {
      OutputText::Piece piece = live.text->Add(t.token_id);
      delta.text = std::move(piece.text);
      if (piece.stop_string) {
        live.stop_string = std::move(piece.stop_string);
        // NotFound when this update already finished it (max_tokens, EOS): the stop string is
        // still what ReportFinished gives as the reason.
        scheduler_->FinishRequest(live.id, FinishReason::kStop).IgnoreError();
      }
    }
    const bool first = live.timings.first_token == absl::InfinitePast();
    if (first) live.timings.first_token = now;
    if (options_.monitor) options_.monitor->OnTokens(1, first, live.last_token_time, now);
    live.last_token_time = now;
    live.observer->OnTokens(delta);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  absl::MutexLock lock(&mu_);
  stats_.num_steps++;
  stats_.step_seconds_total += seconds;
  stats_.last_step_seconds = seconds;
  stats_.max_step_seconds = std::max(stats_.max_step_seconds, seconds);
  return true;
}

void Engine::ReportFinished() {
  for (std::unique_ptr<Request>& request : scheduler_->TakeFinishedRequests()) {
    auto it = live_.find(request->id());
    if (it == live_.end()) continue;
    LiveRequest& live = *it->second;
    if (live.text) {
      // The text held back is final now; it goes in a last delta without tokens.
      OutputText::Piece piece = live.text->Finish();
      if (piece.stop_string) live.stop_string = std::move(piece.stop_string);
      if (!piece.text.empty()) {
        TokenDelta last;
        last.text = std::move(piece.text);
        live.observer->OnTokens(last);
      }
    }
    RequestResult result;
    result.finish_reason = request->finish_reason().value_or(FinishReason::kError);
    result.status = live.error;
    if (result.finish_reason == FinishReason::kError && result.status.ok()) {
      result.status = absl::InternalError("the engine failed the request");
    }
    const auto output = request->output_token_ids();
    result.output_token_ids.assign(output.begin(), output.end());
    if (live.stop_string && result.status.ok()) {
      result.finish_reason = FinishReason::kStop;
      result.stop_string = std::move(live.stop_string);
    } else if (result.finish_reason == FinishReason::kStop && !output.empty()) {
      result.stop_token_id = output.back();
    }
    result.prompt_logprobs = std::move(live.prompt_logprobs);
    result.num_prompt_tokens = request->num_prompt_tokens();
    result.num_cached_prompt_tokens = request->num_cached_prompt_tokens();
    result.num_preemptions = request->num_preemptions();
    Finish(live, std::move(result));
    live_.erase(it);
  }
}

void Engine::Finish(LiveRequest& live, RequestResult result) {
  result.request_id = live.id;
  result.timings = live.timings;
  result.timings.finished = absl::Now();
  // The monitor first, as with the stats: a client that saw its request end finds it counted.
  if (options_.monitor) options_.monitor->OnFinished(result);
  live.observer->OnFinished(result);
  absl::MutexLock lock(&mu_);
  live_ids_.erase(live.id);
  idle_.SignalAll();
}

void Engine::FailAll(const absl::Status& status) {
  for (auto& [id, live] : live_) {
    live->error = status;
    scheduler_->FinishRequest(id, FinishReason::kError).IgnoreError();
  }
}

}  // namespace mlkv
