#include "runtime/kernel_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "compiler/error.hpp"
#include "runtime/files.hpp"

#ifndef LOSSFORGE_VERSION_STRING
#error "LOSSFORGE_VERSION_STRING must be defined by the build (runtime/CMakeLists.txt)"
#endif

namespace lossforge {
namespace {

namespace fs = std::filesystem;

// ---- the entry format --------------------------------------------------------
//   offset  size  field
//        0     8  magic "LFKERNEL"
//        8     4  format version (little endian)
//       12     4  key text length
//       16     8  payload length
//       24     8  checksum of the header fields above, the key text and the payload
//       32     -  key text, then payload
// Bump kFormatVersion when the layout changes: older entries then read as a
// miss (not as corruption) and are overwritten by the next store.
constexpr std::array<char, 8> kMagic = {'L', 'F', 'K', 'E', 'R', 'N', 'E', 'L'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 32;
constexpr std::string_view kEntrySuffix = ".lfk";
// Temporary files of writers that died before their rename are removed by the
// next eviction scan once they are this old (a live writer takes milliseconds).
constexpr auto kStaleTemporaryAge = std::chrono::hours(1);
// Eviction frees down to this fraction of the bound, so that a full cache does
// not scan the directory on every store.
constexpr double kEvictionLowWater = 0.8;

void put_u32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
void put_u64(char* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(value >> (8 * i));
}
uint32_t get_u32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return value;
}
uint64_t get_u64(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return value;
}

uint64_t finalize(uint64_t h) {  // MurmurHash3's fmix64: every input bit reaches every output bit
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A fast 64-bit checksum (8 bytes per step) for detecting torn, truncated or
// bit-flipped files; not a defence against someone forging entries, who could
// as well write to the cache directory directly.
uint64_t checksum64(uint64_t seed, std::string_view data) {
  constexpr uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xbf58476d1ce4e5b9ULL;
  uint64_t h = seed ^ (data.size() * k1);
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data.data() + i, 8);
    if constexpr (std::endian::native == std::endian::big) word = get_u64(data.data() + i);
    h = std::rotl(h ^ (word * k2), 29) * k1;
  }
  uint64_t tail = 0;
  for (size_t j = 0; i + j < data.size(); ++j) tail |= uint64_t{static_cast<unsigned char>(data[i + j])} << (8 * j);
  h = std::rotl(h ^ (tail * k2), 29) * k1;
  return finalize(h);
}

uint64_t entry_checksum(const char* header, std::string_view key_text, std::string_view payload) {
  uint64_t h = checksum64(0x4c464b45524e454cULL, std::string_view(header + 8, 16));
  h = checksum64(h, key_text);
  return checksum64(h, payload);
}

std::string encode_entry(const std::string& key_text, std::string_view payload) {
  std::string file(kHeaderSize + key_text.size() + payload.size(), '\0');
  std::memcpy(file.data(), kMagic.data(), kMagic.size());
  put_u32(file.data() + 8, kFormatVersion);
  put_u32(file.data() + 12, static_cast<uint32_t>(key_text.size()));
  put_u64(file.data() + 16, payload.size());
  put_u64(file.data() + 24, entry_checksum(file.data(), key_text, payload));
  std::memcpy(file.data() + kHeaderSize, key_text.data(), key_text.size());
  std::memcpy(file.data() + kHeaderSize + key_text.size(), payload.data(), payload.size());
  return file;
}

// What a file on disk turned out to hold.
struct Decoded {
  enum class Status { Valid, OtherKey, OtherFormat, Corrupt } status;
  std::string why;      // for Corrupt
  std::string payload;  // for Valid
};

Decoded decode_entry(std::string_view file, std::string_view expected_key) {
  auto corrupt = [](std::string why) { return Decoded{Decoded::Status::Corrupt, std::move(why), {}}; };
  if (file.size() < kHeaderSize) return corrupt("truncated header (" + std::to_string(file.size()) + " bytes)");
  if (std::memcmp(file.data(), kMagic.data(), kMagic.size()) != 0) return corrupt("not a lossforge kernel cache entry");
  if (get_u32(file.data() + 8) != kFormatVersion) return {Decoded::Status::OtherFormat, {}, {}};
  const uint64_t key_size = get_u32(file.data() + 12);
  const uint64_t payload_size = get_u64(file.data() + 16);
  const uint64_t body_size = file.size() - kHeaderSize;
  if (key_size > body_size || payload_size != body_size - key_size) {
    return corrupt("length mismatch (header says " + std::to_string(kHeaderSize + key_size + payload_size) +
                   " bytes, file has " + std::to_string(file.size()) + ")");
  }
  std::string_view key_text = file.substr(kHeaderSize, key_size);
  std::string_view payload = file.substr(kHeaderSize + key_size);
  if (entry_checksum(file.data(), key_text, payload) != get_u64(file.data() + 24)) return corrupt("checksum mismatch");
  // A valid entry of another key: a digest collision. Not damage; the store
  // that follows the miss replaces it.
  if (key_text != expected_key) return {Decoded::Status::OtherKey, {}, {}};
  return {Decoded::Status::Valid, {}, std::string(payload)};
}

std::string hex64(uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(":").append(std::to_string(value.size())).append(":").append(value).append("\n");
}

// Closes a file descriptor on every path out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads all of an open file; false on a read error.
bool read_all(int fd, size_t size, std::string& out) {
  out.resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t got = ::read(fd, out.data() + done, size - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) break;  // shrank under us: the length check reports it
    done += static_cast<size_t>(got);
  }
  out.resize(done);
  return true;
}

bool is_entry_name(const std::string& name) {
  return name.size() > kEntrySuffix.size() && name.ends_with(kEntrySuffix) && name[0] != '.';
}
bool is_temporary_name(const std::string& name) {
  // write_file_atomic names its temporary ".<target>.tmp-<pid>-..." next to the target.
  return name.starts_with(".") && name.find(std::string(kEntrySuffix) + ".tmp-") != std::string::npos;
}

}  // namespace

std::string_view lossforge_version() { return LOSSFORGE_VERSION_STRING; }

std::string KernelKey::text() const {
  std::string out = "lossforge-kernel-key\n";
  append_field(out, "loss", hex64(loss_hash));
  append_field(out, "backend", backend);
  append_field(out, "target", target);
  append_field(out, "dtype", dtype);
  append_field(out, "lossforge", lossforge_version);
  append_field(out, "compiler", compiler_version);
  append_field(out, "variant", variant);
  return out;
}

uint64_t stable_hash(std::string_view text) { return checksum64(0x736f757263657478ULL, text); }

uint64_t KernelKey::digest() const { return checksum64(0x6b65726e656c6b79ULL, text()); }

std::string default_cache_directory() {
  auto env = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value ? value : "";
  };
  if (std::string dir = env("LOSSFORGE_CACHE_DIR"); !dir.empty()) return dir;
  // The XDG spec says to ignore a relative XDG_CACHE_HOME.
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty() && xdg.front() == '/') return xdg + "/lossforge";
  if (std::string home = env("HOME"); !home.empty()) return home + "/.cache/lossforge";
  return "";
}

KernelCache::KernelCache(KernelCacheOptions options) : options_(std::move(options)) {
  std::string wanted = options_.directory ? *options_.directory : default_cache_directory();
  if (!options_.report) {
    options_.report = [](const std::string& line) { std::fprintf(stderr, "lossforge: %s\n", line.c_str()); };
  }
  if (wanted.empty()) {
    // Asked for memory only (or no HOME at all): not worth a warning when asked.
    if (!options_.directory) warn("kernel cache: no cache directory (set LOSSFORGE_CACHE_DIR or HOME); caching in memory only");
    return;
  }
  std::error_code error;
  fs::create_directories(wanted, error);
  if (error || !fs::is_directory(wanted, error)) {
    warn("kernel cache: cannot use " + wanted + ": " +
         (error ? error.message() : std::string("not a directory")) + "; caching in memory only");
    return;
  }
  if (::access(wanted.c_str(), R_OK | W_OK | X_OK) != 0) {
    warn("kernel cache: cannot use " + wanted + ": " + std::generic_category().message(errno) +
         "; caching in memory only");
    return;
  }
  directory_ = wanted;
}

std::string KernelCache::directory() const {
  std::lock_guard lock(mutex_);
  return directory_;
}

bool KernelCache::disk_enabled() const { return !directory().empty(); }

KernelCacheStats KernelCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string KernelCache::entry_path(const KernelKey& key) const {
  std::string dir = directory();
  if (dir.empty()) return "";
  return (fs::path(dir) / (hex64(key.digest()) + std::string(kEntrySuffix))).string();
}

void KernelCache::warn(const std::string& line) { options_.report(line); }

void KernelCache::disable_disk(const std::string& why) {
  std::string was;
  {
    std::lock_guard lock(mutex_);
    if (directory_.empty()) return;  // another thread already reported it
    was.swap(directory_);
  }
  warn("kernel cache: " + why + "; caching in memory only from now on");
}

void KernelCache::report_corrupt(const std::string& path, const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    ++stats_.corrupt_entries;
    if (!reported_.insert(path).second) return;
  }
  warn("kernel cache: " + path + ": " + why + "; removed, the kernel will be rebuilt");
}

void KernelCache::remember(const std::string& key_text, std::string_view bytes) {
  if (bytes.size() > options_.memory_bytes) return;  // would evict everything and still not fit
  if (auto found = by_key_.find(key_text); found != by_key_.end()) {
    memory_used_ -= found->second->bytes.size();
    lru_.erase(found->second);
    by_key_.erase(found);
  }
  lru_.push_front(MemoryEntry{key_text, std::string(bytes)});
  by_key_.emplace(key_text, lru_.begin());
  memory_used_ += bytes.size();
  while (memory_used_ > options_.memory_bytes) {
    MemoryEntry& oldest = lru_.back();
    memory_used_ -= oldest.bytes.size();
    by_key_.erase(oldest.key_text);
    lru_.pop_back();
    ++stats_.memory_evictions;
  }
}

std::optional<std::string> KernelCache::lookup(const KernelKey& key) {
  const std::string key_text = key.text();
  {
    std::lock_guard lock(mutex_);
    if (auto found = by_key_.find(key_text); found != by_key_.end()) {
      lru_.splice(lru_.begin(), lru_, found->second);
      ++stats_.memory_hits;
      return found->second->bytes;
    }
  }
  // Disk I/O outside the lock: other threads keep hitting memory meanwhile.
  std::optional<std::string> bytes = read_disk(key, key_text);
  std::lock_guard lock(mutex_);
  if (!bytes) {
    ++stats_.misses;
    return std::nullopt;
  }
  ++stats_.disk_hits;
  remember(key_text, *bytes);
  return bytes;
}

std::optional<std::string> KernelCache::read_disk(const KernelKey& key, const std::string& key_text) {
  const std::string path = entry_path(key);
  if (path.empty()) return std::nullopt;
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    // ENOENT is the ordinary miss. Anything else (permissions changed under
    // us, I/O errors) is a miss too: the store that follows finds out whether
    // the directory is still usable.
    return std::nullopt;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const size_t size = static_cast<size_t>(st.st_size);
  Decoded decoded;
  std::string file;
  if (size > options_.disk_bytes) {
    // Never written by a cache with this bound; do not read a huge foreign file into memory.
    decoded = {Decoded::Status::Corrupt, "entry larger than the cache bound (" + std::to_string(size) + " bytes)", {}};
  } else if (!read_all(fd.get(), size, file)) {
    return std::nullopt;
  } else {
    decoded = decode_entry(file, key_text);
  }
  switch (decoded.status) {
    case Decoded::Status::Valid:
      // Record the access for eviction (oldest access goes first). Best effort:
      // a read-only shared cache still serves hits.
      ::futimens(fd.get(), nullptr);
      return std::move(decoded.payload);
    case Decoded::Status::OtherKey:
    case Decoded::Status::OtherFormat:
      return std::nullopt;
    case Decoded::Status::Corrupt: {
      // Remove it so that neither this process nor another trips over it again,
      // unless a writer has renamed a fresh entry into place since we opened it.
      struct stat now;
      if (::stat(path.c_str(), &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
        ::unlink(path.c_str());
      }
      report_corrupt(path, decoded.why);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

void KernelCache::store(const KernelKey& key, std::string_view bytes) {
  const std::string key_text = key.text();
  {
    std::lock_guard lock(mutex_);
    ++stats_.stores;
    remember(key_text, bytes);
  }
  write_disk(key, key_text, bytes);
}

void KernelCache::write_disk(const KernelKey& key, const std::string& key_text, std::string_view bytes) {
  const std::string path = entry_path(key);
  if (path.empty()) return;
  const std::string file = encode_entry(key_text, bytes);
  if (file.size() > options_.disk_bytes) return;  // cannot fit under the bound: memory only for this one
  try {
    write_file_atomic(path, file);
  } catch (const Error& error) {
    disable_disk(error.what());
    return;
  }
  evict_disk_if_needed(path, file.size());
}

void KernelCache::evict_disk_if_needed(const std::string& written_path, size_t just_written) {
  const std::string dir = directory();
  if (dir.empty()) return;
  {
    std::lock_guard lock(mutex_);
    // The first store of a process scans once to learn what other processes left.
    if (disk_estimate_) {
      *disk_estimate_ += just_written;
      if (*disk_estimate_ <= options_.disk_bytes) return;
    }
  }

  struct Candidate {
    fs::path path;
    fs::file_time_type last_access;
    uintmax_t size;
  };
  std::vector<Candidate> entries;
  size_t total = 0;
  const auto stale_before = fs::file_time_type::clock::now() - kStaleTemporaryAge;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code entry_error;
    if (!it->is_regular_file(entry_error)) continue;
    const auto size = it->file_size(entry_error);
    const auto mtime = it->last_write_time(entry_error);
    if (entry_error) continue;  // removed by another process meanwhile
    if (is_temporary_name(name)) {
      if (mtime < stale_before) fs::remove(it->path(), entry_error);
      continue;
    }
    if (!is_entry_name(name)) continue;  // never touch files that are not ours
    entries.push_back({it->path(), mtime, size});
    total += size;
  }

  uint64_t evicted = 0;
  if (total > options_.disk_bytes) {
    std::sort(entries.begin(), entries.end(),
              [](const Candidate& a, const Candidate& b) { return a.last_access < b.last_access; });
    const auto low_water = static_cast<size_t>(static_cast<double>(options_.disk_bytes) * kEvictionLowWater);
    for (const Candidate& entry : entries) {
      if (total <= low_water) break;
      // The entry just written is the one the caller is about to use: keep it
      // even if it alone is above the low-water mark.
      if (entry.path == fs::path(written_path)) continue;
      // Another process may be evicting the same entry: losing that race is fine.
      std::error_code remove_error;
      if (fs::remove(entry.path, remove_error)) ++evicted;
      total -= std::min<size_t>(total, entry.size);
    }
  }
  std::lock_guard lock(mutex_);
  disk_estimate_ = total;
  stats_.evicted_entries += evicted;
}

std::string KernelCache::get_or_build(const KernelKey& key, const std::function<std::string()>& build) {
  if (std::optional<std::string> cached = lookup(key)) return std::move(*cached);
  std::string bytes = build();
  store(key, bytes);
  return bytes;
}

KernelCache& default_kernel_cache() {
  static KernelCache cache;
  return cache;
}

}  // namespace lossforge
