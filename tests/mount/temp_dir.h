#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fsysfs::mount::testing {

// A fresh directory under /tmp, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/fsysfs-mount-test.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

  std::string mkdir(const std::string& name) const {
    std::string p = *this / name;
    std::filesystem::create_directories(p);
    return p;
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = *this / name;
    std::ofstream(p) << content;
    return p;
  }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace fsysfs::mount::testing
