#include "fusefs/faults.h"

#include <fnmatch.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace fsysfs::fusefs {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(FaultOp::kCount)> kOpNames = {
    "read",  "write", "fsync",   "fdatasync", "fsyncdir", "flush", "open",  "create",
    "mknod", "mkdir", "symlink", "link",      "unlink",   "rmdir", "rename"};

constexpr std::pair<std::string_view, int> kErrnos[] = {
    {"EPERM", EPERM},         {"ENOENT", ENOENT},
    {"EINTR", EINTR},         {"EIO", EIO},
    {"ENXIO", ENXIO},         {"EBADF", EBADF},
    {"EAGAIN", EAGAIN},       {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},       {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},       {"EXDEV", EXDEV},
    {"ENOTDIR", ENOTDIR},     {"EISDIR", EISDIR},
    {"EINVAL", EINVAL},       {"ENFILE", ENFILE},
    {"EMFILE", EMFILE},       {"EFBIG", EFBIG},
    {"ENOSPC", ENOSPC},       {"EROFS", EROFS},
    {"EMLINK", EMLINK},       {"ENAMETOOLONG", ENAMETOOLONG},
    {"ENOTEMPTY", ENOTEMPTY}, {"ENOTSUP", ENOTSUP},
    {"ETIMEDOUT", ETIMEDOUT}, {"ESTALE", ESTALE},
    {"EDQUOT", EDQUOT},       {"ENOTCONN", ENOTCONN},
    {"ENODATA", ENODATA},     {"ERANGE", ERANGE},
    {"ENOSYS", ENOSYS},       {"ELOOP", ELOOP},
    {"EOVERFLOW", EOVERFLOW}, {"ENOTTY", ENOTTY},
    {"ESPIPE", ESPIPE},       {"EFAULT", EFAULT},
    {"ENODEV", ENODEV},       {"ETXTBSY", ETXTBSY},
    {"ENOLCK", ENOLCK},       {"ECANCELED", ECANCELED},
    {"EDEADLK", EDEADLK},     {"E2BIG", E2BIG},
};

std::optional<uint64_t> parse_u64(std::string_view s) noexcept {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "write|fsync" or "all" -> op bits; nullopt names an unknown op in `bad`.
std::optional<uint32_t> parse_ops(std::string_view s, std::string& bad) {
  if (s == "all" || s == "*") return (1u << static_cast<unsigned>(FaultOp::kCount)) - 1;
  uint32_t bits = 0;
  while (true) {
    size_t bar = s.find('|');
    std::string_view name = s.substr(0, bar);
    size_t i = 0;
    while (i < kOpNames.size() && kOpNames[i] != name) ++i;
    if (i == kOpNames.size()) {
      bad = std::string(name);
      return std::nullopt;
    }
    bits |= 1u << i;
    if (bar == std::string_view::npos) return bits;
    s.remove_prefix(bar + 1);
  }
}

}  // namespace

std::string_view fault_op_name(FaultOp op) noexcept {
  auto i = static_cast<size_t>(op);
  return i < kOpNames.size() ? kOpNames[i] : "?";
}

std::optional<int> parse_errno(std::string_view text) noexcept {
  for (const auto& [name, value] : kErrnos) {
    if (name == text) return value;
  }
  // The kernel refuses a reply with an errno of 512 or more, which would leave the
  // request unanswered.
  if (auto n = parse_u64(text); n && *n > 0 && *n < 512) return static_cast<int>(*n);
  return std::nullopt;
}

std::string errno_name(int err) {
  for (const auto& [name, value] : kErrnos) {
    if (value == err) return std::string(name);
  }
  return std::to_string(err);
}

std::variant<FaultRule, std::string> parse_fault_rule(std::string_view text) {
  FaultRule rule;
  rule.text = std::string(text);
  std::string_view rest = text;
  std::string plan_text;  // keep=, seed=, tear= of a crash rule
  uint64_t count = 0;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return fmt::format("'{}' is not key=value", item);
    std::string_view key = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    if (key == "op") {
      std::string bad;
      auto ops = parse_ops(value, bad);
      if (!ops) {
        std::string known;
        for (auto n : kOpNames) known += fmt::format("{}{}", known.empty() ? "" : "|", n);
        return fmt::format("unknown operation '{}' (expected {} or all)", bad, known);
      }
      rule.ops = *ops;
    } else if (key == "path") {
      if (value.empty()) return "path needs a glob, e.g. path=/dir/*.db";
      rule.glob = std::string(value);
    } else if (key == "errno") {
      auto err = parse_errno(value);
      if (!err)
        return fmt::format("unknown errno '{}' (expected a name like EIO or a number)", value);
      rule.error = *err;
    } else if (key == "delay_ms") {
      auto ms = parse_u64(value);
      if (!ms || *ms > 600000) return fmt::format("bad delay_ms '{}' (0 to 600000)", value);
      rule.delay_ms = static_cast<uint32_t>(*ms);
    } else if (key == "count") {
      auto n = parse_u64(value);
      if (!n || *n == 0 || *n > (1ull << 62))
        return fmt::format("bad count '{}' (a positive integer)", value);
      count = *n;
    } else if (key == "crash") {
      if (value != "before" && value != "after") {
        return fmt::format("bad crash '{}' (expected before or after)", value);
      }
      rule.crash = value == "before" ? CrashPoint::kBefore : CrashPoint::kAfter;
    } else if (key == "keep" || key == "seed" || key == "tear") {
      plan_text += fmt::format(" {}={}", key, value);
    } else if (key == "probability") {
      double p = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), p);
      if (value.empty() || ec != std::errc() || ptr != value.data() + value.size() ||
          !(p > 0.0 && p <= 1.0)) {
        return fmt::format("bad probability '{}' (above 0, at most 1)", value);
      }
      rule.probability = p;
    } else {
      return fmt::format(
          "unknown key '{}' (expected op, path, errno, delay_ms, count, probability, crash, "
          "keep, seed, tear)",
          key);
    }
  }
  if (rule.ops == 0) return "a rule needs op=OPERATION";
  if (rule.crash == CrashPoint::kNone) {
    if (!plan_text.empty()) return "keep, seed and tear belong to a crash rule (crash=after)";
    if (rule.error == 0 && rule.delay_ms == 0) {
      return "a rule needs errno=E..., delay_ms=N or crash=before|after";
    }
    if (count > 0) rule.remaining = static_cast<int64_t>(count);
    return rule;
  }
  if (rule.error != 0 || rule.delay_ms != 0) {
    return "a crash rule cuts the mount off: it takes no errno or delay_ms";
  }
  std::string why;
  std::optional<CrashPlan> plan = CrashPlan::parse(plan_text, &why);
  if (!plan) return why;
  rule.plan = *plan;
  rule.remaining = 1;
  rule.skip = count > 0 ? static_cast<int64_t>(count) - 1 : 0;
  return rule;
}

void Faults::add(FaultRule rule) {
  std::lock_guard lock(mu_);
  rules_.push_back(std::move(rule));
  rearm();
}

void Faults::clear() noexcept {
  std::lock_guard lock(mu_);
  rules_.clear();
  rearm();
}

std::vector<FaultRule> Faults::rules() const {
  std::lock_guard lock(mu_);
  return rules_;
}

std::optional<Faults::Hit> Faults::match(FaultOp op, const std::string& path) {
  const uint32_t bit = 1u << static_cast<unsigned>(op);
  std::lock_guard lock(mu_);
  for (auto& rule : rules_) {
    if (!(rule.ops & bit) || rule.remaining == 0) continue;
    if (::fnmatch(rule.glob.c_str(), path.c_str(), 0) != 0) continue;
    if (rule.probability < 1.0 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= rule.probability) {
      continue;
    }
    if (rule.skip > 0) {
      --rule.skip;
      continue;
    }
    ++rule.hits;
    if (rule.remaining > 0 && --rule.remaining == 0) rearm();
    return Hit{rule.error, rule.delay_ms, rule.crash, rule.plan};
  }
  return std::nullopt;
}

void Faults::rearm() noexcept {
  uint32_t bits = 0;
  bool delays = false;
  for (const auto& rule : rules_) {
    if (rule.remaining != 0) {
      bits |= rule.ops;
      delays = delays || rule.delay_ms > 0;
    }
  }
  armed_.store(bits, std::memory_order_relaxed);
  delays_.store(delays, std::memory_order_relaxed);
}

}  // namespace fsysfs::fusefs
