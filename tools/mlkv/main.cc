// `mlkv`: the command-line tool for running, scoring, inspecting, creating and converting models.
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "tools/mlkv/commands.h"

namespace {

constexpr char kUsage[] = R"(usage: mlkv COMMAND [FLAGS]    (mlkv COMMAND --help lists its flags)

commands:
  generate      --model DIR (--token-ids 1,2,3 | --prompt TEXT) [more --token-ids / --prompt]
                --max-tokens N [--stop STRING ...]
                [--temperature T --top-k K --top-p P --min-p P --repetition-penalty R
                --presence-penalty P --frequency-penalty F --seed S --ignore-eos]
                [--format text|json]; several prompts run concurrently (--token-ids ones
                first); text: per prompt a line of ids, then the text as a JSON string
  score         --model DIR (--token-ids 1,2,3 | --text-file FILE) [--format text|json]
                log-probability of each token given those before it, total, perplexity;
                longer than --max-model-len: windows overlapping by one token
  inspect       --model DIR [--kv-dtype f32|f16|bf16] [--weight-dtype f32|f16|bf16]
                [--format text|json]
                [--kv-cache-bytes B | --kv-cache-fraction F [--memory-limit-bytes M]]
                [--max-model-len L] [--block-size N]
                [--max-num-batched-tokens T] [--max-num-seqs S]: with a budget, also the KV
                blocks and the sequences of max-model-len that fit at once (a fraction is of
                the memory the weights and the activation workspace for T tokens leave)
  random-model  --config FILE --seed S --out DIR [--dtype f32|f16|bf16]
  convert       --model DIR --out DIR --num-key-value-heads N --num-key-value-layers K
                [--pool mean|pairwise]
  capacity      --config FILE [--config FILE ...] (--memory-bytes B [--memory-utilization 0.9]
                | --kv-cache-bytes B) [--weight-dtype f16] [--kv-dtype f16] [--block-size 16]
                [--context-lens 2048,...] [--max-num-batched-tokens 2048] [--max-num-seqs 256]
                [--bandwidth-gbs G --tflops T [--max-batch 256]]
                weights, activation workspace, KV blocks and concurrent sequences per
                variant; decode roofline
  tokenize      --tokenizer FILE (--text TEXT | --text-file FILE) [--format text|json]
                token ids of the text (text: space-separated; json: {"token_ids": [...]});
                or --jsonl-in FILE|-: one JSON string per line in, one JSON id list per line out
  detokenize    --tokenizer FILE (--token-ids 1,2,3 [--format text|json] | --jsonl-in FILE|-)
                [--skip-special-tokens]: the text, exactly (text) or as {"text": ...} (json)

flags of generate and score (the engine):
  --block-size N (16)  --kv-dtype f32|f16|bf16 (f32)  --threads N (all cores)
  --weight-dtype f32|f16|bf16 (f32)  how weight matrices and embeddings are held: 16-bit
                       halves their memory (the GPU also runs the GEMMs on tensor cores)
  --prefill-chunk N    most prompt tokens of one sequence per step (0: no limit)
  --max-num-batched-tokens N (2048)  --max-num-seqs N (256)  --no-prefix-caching
  --cuda-graphs        decode steps replay captured CUDA graphs (needs the CUDA backend)
  --cuda-attention simt|tensor-core (simt)  the CUDA attention kernel; tensor-core serves
                       f16/bf16 KV caches of head_dim 64/80/96/128, other shapes stay SIMT
  --max-model-len N (the model's max_position_embeddings)
  --tokenizer FILE     text prompts, output text, stop strings (default: the model
                       directory's tokenizer.json if any, else token ids only)
  --kv-cache-bytes B | --kv-cache-fraction F [--memory-limit-bytes M]
                       KV budget (default: what the given prompts need); F is a share of
                       M (default: the GPU's free memory, or the host's) less the weights
                       and the activation workspace of the largest step
  --device cpu|cuda    where the model runs (default: cuda when this build has the CUDA
                       backend and a GPU is visible, else cpu)
  --sampling-placement auto|backend|host
                       where sampled requests without penalties or logprobs draw: on the
                       backend (only token ids leave a GPU) or on the host; auto: the host
                       until the GPU kernel is verified. A seed reproduces its tokens on one
                       placement
)";

}  // namespace

int main(int argc, char** argv) {
  using mlkv::cli::Args;
  // Logs go to stderr: stdout carries the command's output (JSON for --format json).
  spdlog::set_default_logger(spdlog::stderr_color_mt("mlkv"));
  const std::map<std::string, std::function<absl::Status(const Args&)>> commands = {
      {"generate", mlkv::cli::RunGenerate}, {"score", mlkv::cli::RunScore},
      {"inspect", mlkv::cli::RunInspect},   {"random-model", mlkv::cli::RunRandomModel},
      {"convert", mlkv::cli::RunConvert},   {"capacity", mlkv::cli::RunCapacity},
      {"tokenize", mlkv::cli::RunTokenize}, {"detokenize", mlkv::cli::RunDetokenize}};
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  auto command = commands.find(argv[1]);
  if (command == commands.end()) {
    std::fprintf(stderr, "mlkv: unknown command \"%s\"\n\n%s", argv[1], kUsage);
    return 2;
  }
  const absl::Status status = command->second(Args(argv + 2, argv + argc));
  if (!status.ok()) {
    std::fprintf(stderr, "mlkv %s: error: %s\n", argv[1], std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
