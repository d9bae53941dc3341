#include "runtime/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "compiler/error.hpp"

namespace lossforge {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, std::string_view step, int error) {
  throw Error(path + ": cannot " + std::string(step) + ": " + std::generic_category().message(error));
}

// Owns the temporary file until it has been renamed into place.
class TempFile {
 public:
  TempFile(const fs::path& target, const std::string& shown_path) : shown_path_(shown_path) {
    static std::atomic<unsigned> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    // A name nobody else uses: O_EXCL refuses collisions, so retry with a new one.
    for (int attempt = 0; attempt < 100; ++attempt) {
      fs::path candidate = target;
      candidate.replace_filename("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(counter.fetch_add(1)) + "-" + std::to_string(now % 1000000));
      // 0666 lets the umask decide the bits of a new file, as for any other write.
      fd_ = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) {
        path_ = candidate;
        return;
      }
      if (errno != EEXIST) fail(shown_path_, "create a temporary file next to it", errno);
    }
    fail(shown_path_, "create a temporary file next to it", EEXIST);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  void write_all(std::string_view contents) {
    while (!contents.empty()) {
      ssize_t written = ::write(fd_, contents.data(), contents.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        fail(shown_path_, "write", errno);
      }
      contents.remove_prefix(static_cast<size_t>(written));
    }
  }

  void copy_mode_from(const fs::path& original) {
    struct stat st;
    if (::stat(original.c_str(), &st) != 0) return;  // a new file: the umask decided
    if (::fchmod(fd_, st.st_mode & 07777) != 0) fail(shown_path_, "set permissions", errno);
  }

  // Makes the contents durable, then moves them over the target.
  void commit(const fs::path& target) {
    if (::fsync(fd_) != 0) fail(shown_path_, "sync", errno);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(shown_path_, "write", errno);
    if (::rename(path_.c_str(), target.c_str()) != 0) fail(shown_path_, "replace", errno);
    path_.clear();
  }

 private:
  std::string shown_path_;
  fs::path path_;
  int fd_ = -1;
};

// The rename is durable only once the directory entry is: sync the directory.
// Best effort: some file systems refuse fsync on directories, and the new
// contents are already in place by then.
void sync_directory(const fs::path& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view contents) {
  if (path.empty()) throw Error("cannot write a file with an empty name");
  std::error_code error;
  // Follow a symbolic link so that it keeps pointing at the (new) file. Only a
  // link is resolved: resolving every path races with other processes that
  // delete or replace the target meanwhile.
  fs::path target(path);
  if (fs::is_symlink(target, error)) {
    target = fs::weakly_canonical(target, error);
    if (error) fail(path, "resolve the link", error.value());
  }
  if (fs::is_directory(target, error)) fail(path, "write", EISDIR);

  TempFile temp(target, path);
  temp.write_all(contents);
  temp.copy_mode_from(target);
  temp.commit(target);
  sync_directory(target.has_parent_path() ? target.parent_path() : fs::path("."));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + path);
  return s.str();
}

}  // namespace lossforge
