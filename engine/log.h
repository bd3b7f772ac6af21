#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace fsysfs {

// A named logger ("engine", "fusefs", "mount") sharing the sinks and level of the
// default logger as it is when first asked for; the command sets the default logger up
// before anything logs.
inline std::shared_ptr<spdlog::logger> component_logger(const std::string& name) {
  if (auto l = spdlog::get(name)) return l;
  auto base = spdlog::default_logger();
  auto l = std::make_shared<spdlog::logger>(name, base->sinks().begin(), base->sinks().end());
  l->set_level(base->level());
  spdlog::register_logger(l);  // throws only on a duplicate name, which get() excluded
  return l;
}

}  // namespace fsysfs
