// Fuzzes the fault rule parser (the value of the control file's user.fsysfs.inject and
// `fsysfs inject`): any text gives a rule or a message, never a crash. An accepted rule
// must be one the daemon can act on, and must match paths in bounded time (libFuzzer's
// -timeout catches a glob that makes fnmatch(3) explode).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "fusefs/faults.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fsysfs::fusefs;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_fault_rule(text);
  if (std::holds_alternative<std::string>(parsed)) {
    if (std::get<std::string>(parsed).empty()) std::abort();  // a refusal says why
    return 0;
  }
  FaultRule rule = std::get<FaultRule>(parsed);
  if (rule.ops == 0 || rule.ops >= (1u << static_cast<unsigned>(FaultOp::kCount))) std::abort();
  if (rule.error < 0 || rule.error >= 4096) std::abort();
  if (rule.error == 0 && rule.delay_ms == 0) std::abort();
  if (rule.remaining == 0 || !(rule.probability > 0.0 && rule.probability <= 1.0)) std::abort();
  if (rule.error != 0 && parse_errno(errno_name(rule.error)) != rule.error) std::abort();
  Faults faults;
  faults.add(rule);
  for (unsigned op = 0; op < static_cast<unsigned>(FaultOp::kCount); ++op) {
    if (faults.armed(static_cast<FaultOp>(op))) {
      (void)faults.match(static_cast<FaultOp>(op), "/a/b/c.db");
      (void)faults.match(static_cast<FaultOp>(op), std::string(200, 'a') + "/x");
    }
  }
  return 0;
}
