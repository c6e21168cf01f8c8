// tessera/train/mapped_file.hpp — a file mapped read-only into memory, owned like a unique_ptr.
//
// The mapping is released by the destructor, so an exception thrown while the contents are validated
// (a bad header, a token outside the vocabulary) frees it: a caller that retries in one process never
// runs out of mappings.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <utility>

#include "tessera/core/error.hpp"

namespace tessera {

class mapped_file {
 public:
  mapped_file() = default;
  /// Maps `path` (named `what` in errors, e.g. "data file x.bin"); an empty file maps to no bytes.
  explicit mapped_file(const std::string& path, const std::string& what) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw usage_error(cat(what, ": cannot open"));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw usage_error(cat(what, ": not a regular file"));
    }
    const auto bytes = static_cast<std::size_t>(st.st_size);
    if (bytes > 0) {
      void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw usage_error(cat(what, ": cannot map ", bytes, " bytes"));
      }
      data_ = static_cast<const unsigned char*>(p);
      size_ = bytes;
    }
    ::close(fd);
  }
  mapped_file(mapped_file&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { release(); }

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  void release() {
    if (data_ != nullptr) ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace tessera
