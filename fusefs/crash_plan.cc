#include "fusefs/crash_plan.h"

#include <fmt/format.h>

#include <charconv>
#include <sstream>

namespace fsysfs::fusefs {

std::string CrashPlan::text() const {
  switch (keep) {
    case CrashKeep::kAll:
      return "keep=all";
    case CrashKeep::kRandom:
      return fmt::format("keep=random seed={}{}", seed, tear ? " tear=1" : "");
    default:
      return "keep=none";
  }
}

std::optional<CrashPlan> CrashPlan::parse(std::string_view text, std::string* why) {
  CrashPlan plan;
  std::istringstream words{std::string(text)};
  for (std::string w; words >> w;) {
    const size_t eq = w.find('=');
    const std::string key = w.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : w.substr(eq + 1);
    if (key == "keep" && (value == "none" || value == "all" || value == "random")) {
      plan.keep = value == "all"      ? CrashKeep::kAll
                  : value == "random" ? CrashKeep::kRandom
                                      : CrashKeep::kNone;
    } else if (key == "keep") {
      *why = fmt::format("bad value '{}' for keep (expected none|all|random)", value);
      return std::nullopt;
    } else if (key == "seed") {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
        *why = fmt::format("bad seed '{}' (expected a number)", value);
        return std::nullopt;
      }
      plan.seed = v;
    } else if (key == "tear" && (value == "1" || value == "0")) {
      plan.tear = value == "1";
    } else {
      *why = fmt::format("unknown crash setting '{}'", w);
      return std::nullopt;
    }
  }
  if (plan.tear && plan.keep != CrashKeep::kRandom) {
    *why = "tearing writes needs keep=random (what else would decide which sectors are kept?)";
    return std::nullopt;
  }
  return plan;
}

}  // namespace fsysfs::fusefs
