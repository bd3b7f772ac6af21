// A test-only stand-in for the fsysfs command: `fusefs_serve_helper -f [-o opts] BACKING MNT`
// calls fusefs::serve directly, so the mount tests can run before (or without) mount/.
// Options: allow_other, default_permissions, writeback_cache, clone_fd, debug, threads=N.

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "fusefs/session.h"

int main(int argc, char** argv) {
  fsysfs::fusefs::Config config;
  std::string positional[2];
  int npos = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-f") continue;
    if (a == "-o" && i + 1 < argc) {
      std::stringstream ss(argv[++i]);
      std::string opt;
      while (std::getline(ss, opt, ',')) {
        if (opt == "allow_other") {
          config.allow_other = true;
        } else if (opt == "default_permissions") {
          config.default_permissions = true;
        } else if (opt == "writeback_cache") {
          config.writeback_cache = true;
        } else if (opt == "clone_fd") {
          config.clone_fd = true;
        } else if (opt == "debug") {
          config.debug = true;
        } else if (opt.rfind("threads=", 0) == 0) {
          config.threads = static_cast<unsigned>(std::atoi(opt.c_str() + 8));
        } else {
          std::fprintf(stderr, "unknown option %s\n", opt.c_str());
          return 2;
        }
      }
      continue;
    }
    if (npos == 2) {
      std::fprintf(stderr, "usage: %s -f [-o opts] BACKING MNT\n", argv[0]);
      return 2;
    }
    positional[npos++] = a;
  }
  if (npos != 2) {
    std::fprintf(stderr, "usage: %s -f [-o opts] BACKING MNT\n", argv[0]);
    return 2;
  }
  // Paths that do not resolve are passed on as given, so tests can reach serve()'s own
  // refusal paths.
  auto canonical = [](const std::string& p) {
    char* r = realpath(p.c_str(), nullptr);
    if (r == nullptr) return p;
    std::string out = r;
    std::free(r);
    return out;
  };
  config.backing = canonical(positional[0]);
  config.mountpoint = canonical(positional[1]);
  spdlog::set_level(config.debug ? spdlog::level::debug : spdlog::level::info);
  return fsysfs::fusefs::serve(config, [] {});
}
