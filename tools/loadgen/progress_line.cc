// Rate-limited progress output; see progress_line.h.
#include "tools/loadgen/progress_line.h"

#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mlkv::loadgen {
namespace {

// A terminal redraws cheaply; a log file gets a line every few seconds.
constexpr double kTtyIntervalS = 0.5;
constexpr double kLogIntervalS = 5.0;

}  // namespace

ProgressLine::ProgressLine(bool enabled, std::string label)
    : enabled_(enabled), tty_(isatty(STDERR_FILENO) == 1), label_(std::move(label)) {}

void ProgressLine::Update(const Progress& p) {
  const double interval = tty_ ? kTtyIntervalS : kLogIntervalS;
  if (p.elapsed_s - last_print_s_ < interval) return;
  Print(p);
}

void ProgressLine::Finish(const Progress& p) {
  Print(p);
  if (enabled_ && tty_) std::fputc('\n', stderr);
}

void ProgressLine::Print(const Progress& p) {
  last_print_s_ = p.elapsed_s;
  if (!enabled_) return;
  const double seconds = p.elapsed_s > 0 ? p.elapsed_s : 1.0;
  const std::string total = p.total.has_value() ? absl::StrCat("/", *p.total) : "";
  std::fprintf(stderr,
               "%s[%s] %.1f s: %lld%s done, %lld failed, %lld in flight, %.1f req/s, %.0f tok/s%s",
               tty_ ? "\r\033[K" : "", label_.c_str(), p.elapsed_s,
               static_cast<long long>(p.completed), total.c_str(), static_cast<long long>(p.failed),
               static_cast<long long>(p.in_flight), static_cast<double>(p.completed) / seconds,
               static_cast<double>(p.output_tokens) / seconds, tty_ ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace mlkv::loadgen
