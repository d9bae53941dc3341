// The kernel cache: compiled loss kernels (LLVM object code, CUDA CUBINs) kept
// in memory and on disk, so that a loss the search or a training run has met
// before costs a file read instead of a compile.
//
// A kernel is identified by a KernelKey: the loss, the back end that compiled
// it, the machine it was compiled for, the dtype, and the versions of lossforge
// and of the code generator. Anything that changes the generated code must be
// in the key; the cache never looks inside the bytes it stores.
//
// In memory: a least-recently-used map bounded in bytes. On disk: one file per
// entry in `directory` (see default_cache_directory()), each with a header
// holding a magic number, the format version, the full key and a checksum of
// key and payload. Files are written to a temporary name and renamed into place
// (runtime/files.hpp), so any number of processes can share one directory
// without locks: a reader sees a whole old entry, a whole new one, or none.
// Entries that fail their checks (truncated, corrupt, foreign files) are
// reported once, removed, and answered as a miss, so the caller rebuilds them.
// The directory is kept under a size bound by deleting the least recently used
// entries (a hit refreshes an entry's modification time; atime is unreliable).
// A directory that cannot be created, read or written costs one warning and
// leaves the cache working in memory only: the cache never makes a compile fail.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

namespace lossforge {

// The lossforge version compiled into this build ("0.1.0"), part of every key.
std::string_view lossforge_version();

struct KernelKey {
  // Identity of the loss: canonical_hash(loss.body) (compiler/canonical.hpp),
  // so that losses equal up to rewriting share a kernel. (Before canonical.hpp
  // existed this was the structural Node::hash of the body: stable across
  // processes but sensitive to how the formula is written.) What the body does
  // not show -- input types, which inputs are `pred` -- goes into `variant`.
  uint64_t loss_hash = 0;
  std::string backend;   // "llvm", "cuda", ...
  std::string target;    // CPU name + features ("x86_64 znver3 +avx2,+fma"), or GPU arch ("sm_90")
  std::string dtype;     // "f32", "f64"
  std::string lossforge_version{lossforge::lossforge_version()};
  std::string compiler_version;  // "LLVM 16.0.6", "NVRTC 13.0"
  // Anything else the generated code depends on: pred set, thread count, code
  // generation flags. Empty when nothing.
  std::string variant;

  // Every field, length-prefixed, in a fixed order: two keys are the same key
  // exactly when their texts are equal. Stored in each disk entry.
  std::string text() const;
  // A stable 64-bit digest of text(); names the entry's file.
  uint64_t digest() const;
  friend bool operator==(const KernelKey&, const KernelKey&) = default;
};

// A stable 64-bit hash of `text` (the checksum the entries carry), for keys
// that name generated code: a back end whose code generator changed gets a new key.
uint64_t stable_hash(std::string_view text);

struct KernelCacheOptions {
  // Where entries live on disk. nullopt: default_cache_directory(). An empty
  // string: memory only, silently (tests, sandboxes).
  std::optional<std::string> directory;
  size_t memory_bytes = size_t{64} << 20;  // bound on payload bytes held in memory; 0: no memory tier
  size_t disk_bytes = size_t{512} << 20;   // bound on the size of the entry files on disk
  // Receives each warning, one line without a trailing newline. Default: printed
  // to stderr as "lossforge: <line>".
  std::function<void(const std::string&)> report;
};

struct KernelCacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t misses = 0;
  uint64_t stores = 0;
  uint64_t corrupt_entries = 0;   // disk entries that failed their checks (and were removed)
  uint64_t evicted_entries = 0;   // disk entries this process deleted to honour disk_bytes
  uint64_t memory_evictions = 0;  // entries dropped from memory to honour memory_bytes
};

// $LOSSFORGE_CACHE_DIR if set and non-empty, else $XDG_CACHE_HOME/lossforge
// (when absolute, as the XDG spec requires), else $HOME/.cache/lossforge, else
// "" (no disk cache).
std::string default_cache_directory();

// Thread safe: one cache may serve every thread of a process.
class KernelCache {
 public:
  explicit KernelCache(KernelCacheOptions options = {});
  KernelCache(const KernelCache&) = delete;
  KernelCache& operator=(const KernelCache&) = delete;

  // The bytes stored for `key`, from memory or disk; nullopt on a miss
  // (including an entry that failed its checks, which is then reported once).
  std::optional<std::string> lookup(const KernelKey& key);
  // Stores `bytes` for `key` in memory and on disk. Disk failures are reported
  // (once) and switch the cache to memory only; they never throw.
  void store(const KernelKey& key, std::string_view bytes);
  // lookup(), or on a miss build(), store() and return its bytes. Exceptions
  // from build propagate and store nothing.
  std::string get_or_build(const KernelKey& key, const std::function<std::string()>& build);

  // The directory in use; empty while memory only.
  std::string directory() const;
  bool disk_enabled() const;
  KernelCacheStats stats() const;
  // The file that holds (or would hold) `key`'s entry; empty while memory only.
  std::string entry_path(const KernelKey& key) const;

 private:
  struct MemoryEntry {
    std::string key_text;
    std::string bytes;
  };

  std::optional<std::string> read_disk(const KernelKey& key, const std::string& key_text);
  void write_disk(const KernelKey& key, const std::string& key_text, std::string_view bytes);
  void remember(const std::string& key_text, std::string_view bytes);  // memory tier; mutex_ held
  void evict_disk_if_needed(const std::string& written_path, size_t just_written);
  void warn(const std::string& line);
  void disable_disk(const std::string& why);
  void report_corrupt(const std::string& path, const std::string& why);

  KernelCacheOptions options_;
  mutable std::mutex mutex_;
  std::string directory_;  // empty: memory only
  // Memory tier: most recently used at the front.
  std::list<MemoryEntry> lru_;
  std::unordered_map<std::string, std::list<MemoryEntry>::iterator> by_key_;
  size_t memory_used_ = 0;
  // Disk usage as last scanned plus what this process wrote since; a scan
  // (and eviction) happens only when it passes the bound, so a store does not
  // list the directory each time.
  std::optional<size_t> disk_estimate_;
  std::set<std::string> reported_;  // paths reported as corrupt, each reported once
  KernelCacheStats stats_;
};

// The cache every engine of this process shares, with the default options
// ($LOSSFORGE_CACHE_DIR, else $XDG_CACHE_HOME/lossforge, else ~/.cache/lossforge).
KernelCache& default_kernel_cache();

}  // namespace lossforge
