#include "fusefs/stats_report.h"

#include <unistd.h>

#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "engine/nvme.h"
#include "fusefs/crashsim.h"
#include "fusefs/dirty_limit.h"
#include "fusefs/filesystem.h"
#include "fusefs/transport/uring_transport.h"

namespace fsysfs::fusefs {
namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string duration(uint64_t ns) {
  if (ns == 0) return "-";
  if (ns < 10'000) return fmt::format("{}ns", ns);
  if (ns < 10'000'000) return fmt::format("{:.1f}us", static_cast<double>(ns) / 1e3);
  if (ns < 10'000'000'000) return fmt::format("{:.1f}ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.1f}s", static_cast<double>(ns) / 1e9);
}

template <class... A>
void append_line(std::string& out, fmt::format_string<A...> format, A&&... args) {
  out += fmt::format(format, std::forward<A>(args)...);
  out += '\n';
}

std::string dev_name(dev_t dev) { return fmt::format("{}:{}", major(dev), minor(dev)); }

// Everything one report shows, read once.
struct Report {
  explicit Report(Filesystem& fs)
      : config(fs.config()),
        durability(fs.durability()),
        dirsync(fs.dirsync_setting()),
        dirsync_on(fs.dirsync()),
        writeback(fs.writeback()),
        dirty(fs.device().empty() ? std::nullopt : read_bdi_limits(bdi_dir(fs.device()))),
        kills_privs(fs.kills_privs()),
        mount_flags(fs.mount_flags()),
        engine(fs.engine().stats()),
        nvme(fs.nvme_status()),
        fuse(fs.fuse_stats().snapshot()),
        inodes(fs.inodes().counts()),
        file_handles(fs.inodes().remembers()),
        faults(fs.faults().rules()),
        transport(fs.transport_status()),
        ring_requests(fs.uring_transport() ? fs.uring_transport()->requests() : 0),
        crashsim(fs.crashsim() != nullptr),
        crashsim_records(fs.crashsim() != nullptr ? fs.crashsim()->live_records() : 0),
        crashsim_ops(fs.crash_ops()) {}
  const Config& config;
  Durability durability;
  DirSync dirsync;
  bool dirsync_on;
  bool writeback;
  std::optional<BdiLimits> dirty;  // the kernel's cap on the mount's dirty pages
  bool kills_privs;
  MountFlags mount_flags;
  engine::StatsSnapshot engine;
  std::vector<engine::NvmeStatus> nvme;
  FuseStatsSnapshot fuse;
  InodeTable::Counts inodes;
  bool file_handles;
  std::vector<FaultRule> faults;
  std::string transport;
  uint64_t ring_requests;
  bool crashsim;
  size_t crashsim_records;  // changes a crash would undo now
  uint64_t crashsim_ops;    // requests crash rules count
};

constexpr std::pair<const char*, uint64_t engine::StatsSnapshot::*> kEngineCounters[] = {
    {"fixed_buffer_writes", &engine::StatsSnapshot::fixed_buffer_writes},
    {"copied_writes", &engine::StatsSnapshot::copied_writes},
    {"inline_ops", &engine::StatsSnapshot::inline_ops},
    {"client_ring_ops", &engine::StatsSnapshot::client_ring_ops},
    {"inline_overflow", &engine::StatsSnapshot::inline_overflow},
    {"max_inline_waits", &engine::StatsSnapshot::max_inline_waits},
    {"raw_fd_ops", &engine::StatsSnapshot::raw_fd_ops},
    {"short_writes", &engine::StatsSnapshot::short_writes},
    {"sq_full", &engine::StatsSnapshot::sq_full},
    {"submits", &engine::StatsSnapshot::submits},
    {"sqes", &engine::StatsSnapshot::sqes},
    {"cqes", &engine::StatsSnapshot::cqes},
    {"owner_sleeps", &engine::StatsSnapshot::owner_sleeps},
    {"nvme_flush_errors", &engine::StatsSnapshot::nvme_flush_errors},
};

}  // namespace

std::string stats_text(Filesystem& fs) {
  const Report r(fs);
  std::string out;
  append_line(out, "fsysfs on {} (backing {})", r.config.mountpoint, r.config.backing);
  append_line(out, "mount flags {}", to_string(r.mount_flags));
  append_line(out, "durability {}, dirsync {} ({}), writeback cache {}, suid/sgid cleared by {}",
              durability_name(r.durability), r.dirsync_on ? "on" : "off", dirsync_name(r.dirsync),
              r.writeback ? "on" : "off", r.kills_privs ? "daemon" : "kernel");
  if (r.dirty) {
    append_line(out, "dirty page limit {} bytes ({}% of the system's, strict {})",
                r.dirty->max_bytes, r.dirty->max_ratio, r.dirty->strict_limit ? "on" : "off");
  }
  if (r.crashsim) {
    append_line(out, "crashsim: {} change(s) not durable yet (fsysfs crash would undo them)",
                r.crashsim_records);
  }
  append_line(out, "transport {}, {} requests over io_uring, {} engine ops on their rings",
              r.transport, r.ring_requests, r.engine.client_ring_ops);
  append_line(out, "engine {}: {}", r.engine.backend, r.engine.backend_notes);
  append_line(out, "fixed files {}/{}, buffers {}/{}", r.engine.fixed_files_used,
              r.engine.fixed_files_total, r.engine.buffers_used, r.engine.buffers_total);
  if (r.nvme.empty()) append_line(out, "nvme flush: off");
  for (const auto& n : r.nvme) {
    if (n.passthrough) {
      append_line(out, "nvme {} ({}): FLUSH to {} nsid {}, atomic write unit {} B", dev_name(n.dev),
                  n.block_device, n.ns_device, n.nsid, n.atomic_write_unit);
    } else {
      append_line(out, "nvme {} ({}): no passthrough: {}", dev_name(n.dev),
                  n.block_device.empty() ? "-" : n.block_device, n.why);
    }
  }
  append_line(out, "");
  append_line(out, "{:<16}{:>10}{:>14}{:>8}{:>10}{:>10}{:>10}{:>10}", "engine op", "count", "bytes",
              "errors", "p50", "p99", "p99.9", "max");
  for (size_t i = 0; i < r.engine.ops.size(); ++i) {
    const auto& o = r.engine.ops[i];
    append_line(out, "{:<16}{:>10}{:>14}{:>8}{:>10}{:>10}{:>10}{:>10}",
                engine::op_kind_name(static_cast<engine::OpKind>(i)), o.count, o.bytes, o.errors,
                duration(o.p50_ns), duration(o.p99_ns), duration(o.p999_ns), duration(o.max_ns));
  }
  std::string counters;
  for (const auto& [name, field] : kEngineCounters) {
    counters += fmt::format("{}{} {}", counters.empty() ? "" : ", ", name, r.engine.*field);
  }
  append_line(out, "{}", counters);
  append_line(out, "");
  std::string events;
  for (size_t i = 0; i < r.fuse.events.size(); ++i) {
    events += fmt::format("{}{} {}", events.empty() ? "" : ", ",
                          sync_event_name(static_cast<SyncEvent>(i)), r.fuse.events[i]);
  }
  append_line(out, "durability: {}", events);
  std::string ops;
  for (size_t i = 0; i < r.fuse.ops.size(); ++i) {
    if (r.fuse.ops[i] == 0) continue;
    ops += fmt::format("{}{} {}", ops.empty() ? "" : ", ", fuse_op_name(static_cast<FuseOp>(i)),
                       r.fuse.ops[i]);
  }
  append_line(out, "fuse requests: {}", ops.empty() ? "none" : ops);
  std::string errors;
  for (size_t i = 0; i < r.fuse.errors.size(); ++i) {
    if (r.fuse.errors[i] == 0) continue;
    errors += fmt::format("{}{} {}", errors.empty() ? "" : ", ",
                          i == 0 ? "other" : errno_name(static_cast<int>(i)), r.fuse.errors[i]);
  }
  append_line(out, "error replies: {}", errors.empty() ? "none" : errors);
  append_line(out,
              "inodes: {} live, {} remembered for file handles ({}), {} reopened by handle, {} "
              "stale handles, {} dropped",
              r.inodes.live, r.inodes.remembered, r.file_handles ? "on" : "off", r.inodes.reopened,
              r.inodes.stale, r.inodes.dropped);
  if (r.faults.empty()) append_line(out, "fault rules: none");
  for (const auto& f : r.faults) {
    append_line(out, "fault rule: {} (hits {}{})", f.text, f.hits,
                f.remaining >= 0 ? fmt::format(", left {}", f.remaining) : "");
  }
  return out;
}

std::string stats_json(Filesystem& fs) {
  const Report r(fs);
  std::string o = "{";
  o += fmt::format("\"mountpoint\":{},\"backing\":{},\"mount_flags\":\"{}\",\"pid\":{},",
                   json_string(r.config.mountpoint), json_string(r.config.backing),
                   to_string(r.mount_flags), ::getpid());
  o += fmt::format("\"crashsim\":{},\"crashsim_records\":{},\"crashsim_ops\":{},", r.crashsim,
                   r.crashsim_records, r.crashsim_ops);
  o += fmt::format("\"durability\":\"{}\",\"dirsync\":\"{}\",\"dirsync_active\":{},",
                   durability_name(r.durability), dirsync_name(r.dirsync), r.dirsync_on);
  o += fmt::format("\"writeback_cache\":{},\"suid_cleared_by\":\"{}\",", r.writeback,
                   r.kills_privs ? "daemon" : "kernel");
  if (r.dirty) {
    o += fmt::format("\"dirty_limit\":{{\"max_bytes\":{},\"max_ratio\":{},\"strict\":{}}},",
                     r.dirty->max_bytes, r.dirty->max_ratio, r.dirty->strict_limit);
  } else {
    o += "\"dirty_limit\":null,";
  }
  o += fmt::format("\"transport\":{},\"ring_requests\":{},", json_string(r.transport),
                   r.ring_requests);
  o += fmt::format("\"engine\":{{\"backend\":{},\"notes\":{},", json_string(r.engine.backend),
                   json_string(r.engine.backend_notes));
  o += fmt::format("\"fixed_files\":{{\"used\":{},\"total\":{}}},", r.engine.fixed_files_used,
                   r.engine.fixed_files_total);
  o += fmt::format("\"buffers\":{{\"used\":{},\"total\":{}}},", r.engine.buffers_used,
                   r.engine.buffers_total);
  for (const auto& [name, field] : kEngineCounters) {
    o += fmt::format("\"{}\":{},", name, r.engine.*field);
  }
  o += "\"ops\":{";
  for (size_t i = 0; i < r.engine.ops.size(); ++i) {
    const auto& s = r.engine.ops[i];
    o += fmt::format(
        "{}\"{}\":{{\"count\":{},\"bytes\":{},\"errors\":{},\"p50_ns\":{},\"p90_ns\":{},"
        "\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{}}}",
        i ? "," : "", engine::op_kind_name(static_cast<engine::OpKind>(i)), s.count, s.bytes,
        s.errors, s.p50_ns, s.p90_ns, s.p99_ns, s.p999_ns, s.max_ns);
  }
  o += "}},\"nvme\":[";
  for (size_t i = 0; i < r.nvme.size(); ++i) {
    const auto& n = r.nvme[i];
    o += fmt::format(
        "{}{{\"dev\":\"{}\",\"block_device\":{},\"ns_device\":{},\"nsid\":{},\"passthrough\":{},"
        "\"why\":{},\"lba_size\":{},\"atomic_write_unit\":{}}}",
        i ? "," : "", dev_name(n.dev), json_string(n.block_device), json_string(n.ns_device),
        n.nsid, n.passthrough, json_string(n.why), n.lba_size, n.atomic_write_unit);
  }
  o += "],\"fuse\":{\"ops\":{";
  for (size_t i = 0; i < r.fuse.ops.size(); ++i) {
    o += fmt::format("{}\"{}\":{}", i ? "," : "", fuse_op_name(static_cast<FuseOp>(i)),
                     r.fuse.ops[i]);
  }
  o += "},\"errors\":{";
  bool first = true;
  for (size_t i = 0; i < r.fuse.errors.size(); ++i) {
    if (r.fuse.errors[i] == 0) continue;
    o += fmt::format("{}\"{}\":{}", first ? "" : ",",
                     i == 0 ? "other" : errno_name(static_cast<int>(i)), r.fuse.errors[i]);
    first = false;
  }
  o += "}";
  for (size_t i = 0; i < r.fuse.events.size(); ++i) {
    o += fmt::format(",\"{}\":{}", sync_event_name(static_cast<SyncEvent>(i)), r.fuse.events[i]);
  }
  o += fmt::format(
      "}},\"inodes\":{{\"live\":{},\"remembered\":{},\"file_handles\":{},\"reopened\":{},"
      "\"stale\":{},\"dropped\":{}}},\"faults\":[",
      r.inodes.live, r.inodes.remembered, r.file_handles, r.inodes.reopened, r.inodes.stale,
      r.inodes.dropped);
  for (size_t i = 0; i < r.faults.size(); ++i) {
    const auto& f = r.faults[i];
    o += fmt::format("{}{{\"rule\":{},\"hits\":{},\"remaining\":{}}}", i ? "," : "",
                     json_string(f.text), f.hits, f.remaining);
  }
  o += "]}\n";
  return o;
}

}  // namespace fsysfs::fusefs
