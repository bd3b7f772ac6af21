#include "mount/crashtest_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>

namespace fsysfs::mount {
namespace {

// Failed runs listed per mode in the text report (the Markdown and JSON list them all).
constexpr size_t kFailuresShown = 5;

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Single quotes unless every character is safe bare in sh.
std::string shell_quote(std::string_view s) {
  const bool bare = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("_-./,:=+@%").find(c) != std::string_view::npos;
  });
  if (bare) return std::string(s);
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string failing_seeds(const ModeResult& m) {
  std::string out;
  for (const auto& run : m.runs) {
    if (!run.recovered) out += fmt::format("{}{}", out.empty() ? "" : ", ", run.seed);
  }
  return out;
}

// The check's last line, for one-line summaries.
std::string last_line(const std::string& text) {
  const size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

std::string settings_line(const CrashtestReport& r) {
  std::string line = fmt::format("seed {}, {} crash point{} per mode, keep {}{}", r.seed, r.points,
                                 r.points == 1 ? "" : "s", r.keep, r.tear ? ", torn writes" : "");
  if (!r.options.empty()) line += fmt::format(", options {}", r.options);
  return line;
}

std::string failed_run_text(const ModeResult& m, const CrashRunResult& run) {
  std::string line = fmt::format("{} {}: {}; check {}", m.mode, run.seed,
                                 crash_point_text(run, m.requests), run.check_status);
  if (const std::string last = last_line(run.check_tail); !last.empty()) {
    line += fmt::format(": {}", last);
  }
  return line;
}

const CrashRunResult* first_failure(const CrashtestReport& r, const ModeResult** mode) {
  for (const auto& m : r.modes) {
    for (const auto& run : m.runs) {
      if (!run.recovered) {
        *mode = &m;
        return &run;
      }
    }
  }
  return nullptr;
}

}  // namespace

size_t ModeResult::failed() const {
  return static_cast<size_t>(
      std::count_if(runs.begin(), runs.end(), [](const auto& r) { return !r.recovered; }));
}

std::string crash_point_text(const CrashRunResult& run, uint64_t requests) {
  if (!run.fired) {
    return fmt::format("crashed at the end: the workload made {} request(s), not {}", run.ops_done,
                       run.op);
  }
  return fmt::format("crash {} request {} of {}{}", run.after ? "after" : "before", run.op,
                     requests, run.workload_timed_out ? " (workload timed out)" : "");
}

std::string replay_command(const CrashtestReport& r, const std::string& mode, uint32_t seed) {
  std::string cmd =
      fmt::format("fsysfs crashtest --template {} --workload {} --check {}",
                  shell_quote(r.template_dir), shell_quote(r.workload), shell_quote(r.check));
  if (r.keep != "none") cmd += fmt::format(" --keep {}", r.keep);
  if (r.tear) cmd += " --tear";
  if (!r.options.empty()) cmd += fmt::format(" --options {}", shell_quote(r.options));
  if (r.timeout_s > 0) cmd += fmt::format(" --timeout {}", r.timeout_s);
  return cmd + fmt::format(" --mode {} --replay {}", mode, seed);
}

std::string report_text(const CrashtestReport& r) {
  const std::array<std::string, 6> head{"mode",      "requests", "runs",
                                        "recovered", "failed",   "failing runs (seeds)"};
  std::vector<std::array<std::string, 6>> rows;
  for (const auto& m : r.modes) {
    rows.push_back({m.mode, fmt::format("{}{}", m.requests, m.length_timed_out ? "*" : ""),
                    std::to_string(m.runs.size()), std::to_string(m.runs.size() - m.failed()),
                    std::to_string(m.failed()), failing_seeds(m)});
  }
  std::array<size_t, 6> width{};
  for (size_t c = 0; c < width.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::array<std::string, 6>& cells) {
    // The mode and the seeds align left, the counts right.
    std::string out = fmt::format("{:<{}}", cells[0], width[0]);
    for (size_t c = 1; c < 5; ++c) out += fmt::format("  {:>{}}", cells[c], width[c]);
    out += "  " + cells[5];
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = fmt::format("crashtest: {}\n\n", settings_line(r));
  out += line(head);
  for (const auto& row : rows) out += line(row);
  if (std::any_of(r.modes.begin(), r.modes.end(),
                  [](const auto& m) { return m.length_timed_out; })) {
    out += "* the uncrashed workload was stopped by --timeout: its length is what it did by then\n";
  }
  const ModeResult* mode = nullptr;
  const CrashRunResult* first = first_failure(r, &mode);
  if (first == nullptr) return out;
  // Each failed run's directory is MODE-SEED in the scratch directory.
  const std::string scratch = first->kept.substr(0, first->kept.rfind('/'));
  out += fmt::format("\nfailed runs (each kept in {}/MODE-SEED):\n", scratch);
  for (const auto& m : r.modes) {
    size_t shown = 0;
    for (const auto& run : m.runs) {
      if (run.recovered) continue;
      if (shown++ == kFailuresShown) {
        out += fmt::format("  {}: {} more\n", m.mode, m.failed() - kFailuresShown);
        break;
      }
      out += fmt::format("  {}\n", failed_run_text(m, run));
    }
  }
  out += fmt::format("replay one alone with:\n  {}\n", replay_command(r, mode->mode, first->seed));
  return out;
}

std::string report_markdown(const CrashtestReport& r) {
  std::string out = "# fsysfs crashtest\n\n";
  out += fmt::format("{}.\n\n```sh\n# template\n{}\n# workload\n{}\n# check\n{}\n```\n\n",
                     settings_line(r), r.template_dir, r.workload, r.check);
  out += "| mode | requests | runs | recovered | failed | failing runs (seeds) |\n";
  out += "|---|---:|---:|---:|---:|---|\n";
  for (const auto& m : r.modes) {
    out += fmt::format("| {} | {}{} | {} | {} | {} | {} |\n", m.mode, m.requests,
                       m.length_timed_out ? " (timed out)" : "", m.runs.size(),
                       m.runs.size() - m.failed(), m.failed(), failing_seeds(m));
  }
  const ModeResult* mode = nullptr;
  const CrashRunResult* first = first_failure(r, &mode);
  if (first == nullptr) return out;
  out += "\n## Failed runs\n\n";
  for (const auto& m : r.modes) {
    for (const auto& run : m.runs) {
      if (run.recovered) continue;
      // The check's words may hold Markdown; a code span keeps them as they are.
      out += fmt::format("- `{}` {}: {}; check {}", m.mode, run.seed,
                         crash_point_text(run, m.requests), run.check_status);
      if (const std::string last = last_line(run.check_tail); !last.empty()) {
        std::string quoted = last;
        std::replace(quoted.begin(), quoted.end(), '`', '\'');
        out += fmt::format(": `{}`", quoted);
      }
      out += run.kept.empty() ? "\n" : fmt::format(" (kept in `{}`)\n", run.kept);
    }
  }
  out += fmt::format("\nReplay one alone:\n\n```sh\n{}\n```\n",
                     replay_command(r, mode->mode, first->seed));
  return out;
}

std::string report_json(const CrashtestReport& r) {
  std::string out = fmt::format(
      "{{\"template\":{},\"workload\":{},\"check\":{},\"options\":{},\"seed\":{},\"points\":{},"
      "\"keep\":{},\"tear\":{},\"timeout_s\":{},\"modes\":[",
      json_string(r.template_dir), json_string(r.workload), json_string(r.check),
      json_string(r.options), r.seed, r.points, json_string(r.keep), r.tear, r.timeout_s);
  for (size_t i = 0; i < r.modes.size(); ++i) {
    const ModeResult& m = r.modes[i];
    std::string seeds;
    std::string runs;
    for (const auto& run : m.runs) {
      if (!run.recovered) seeds += fmt::format("{}{}", seeds.empty() ? "" : ",", run.seed);
      runs += fmt::format(
          "{}{{\"seed\":{},\"op\":{},\"when\":{},\"fired\":{},\"ops_done\":{},"
          "\"workload_timed_out\":{},\"recovered\":{},\"check\":{},\"check_tail\":{},"
          "\"kept\":{}}}",
          runs.empty() ? "" : ",", run.seed, run.op, run.after ? "\"after\"" : "\"before\"",
          run.fired, run.ops_done, run.workload_timed_out, run.recovered,
          json_string(run.check_status), json_string(run.check_tail), json_string(run.kept));
    }
    out += fmt::format(
        "{}{{\"mode\":{},\"requests\":{},\"length_timed_out\":{},\"runs\":{},\"recovered\":{},"
        "\"failed\":{},\"failing_seeds\":[{}],\"crash_runs\":[{}]}}",
        i ? "," : "", json_string(m.mode), m.requests, m.length_timed_out, m.runs.size(),
        m.runs.size() - m.failed(), m.failed(), seeds, runs);
  }
  return out + "]}\n";
}

}  // namespace fsysfs::mount
