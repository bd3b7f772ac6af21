#pragma once

// What `fsysfs stats` shows: the live settings, the engine (backend, setup, fixed files and
// buffers, per-kind counts, bytes and latency percentiles), NVMe passthrough per device,
// FUSE requests per operation, durability decisions, errors by errno and fault rules.

#include <string>

namespace fsysfs::fusefs {

class Filesystem;

// A human-readable table.
std::string stats_text(Filesystem& fs);
// One JSON object. Keys are stable; new keys may be added.
std::string stats_json(Filesystem& fs);

}  // namespace fsysfs::fusefs
