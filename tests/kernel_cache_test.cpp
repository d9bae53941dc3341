// The kernel cache: hits and misses in memory and on disk, every key field,
// damaged entries, several processes at once, eviction, and falling back to
// memory when the directory is unusable.
#include "runtime/kernel_cache.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace lossforge {
namespace {

namespace fs = std::filesystem;

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "lossforge-cache-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

KernelKey key_for(uint64_t loss_hash) {
  KernelKey key;
  key.loss_hash = loss_hash;
  key.backend = "llvm";
  key.target = "x86_64 skylake +avx2,+fma";
  key.dtype = "f32";
  key.compiler_version = "LLVM 16.0.6";
  return key;
}

// Deterministic bytes per key, of varying length, so that any mix-up or torn
// read shows as a mismatch.
std::string payload_for(uint64_t seed, size_t size) {
  std::mt19937_64 random(seed);
  std::string bytes(size, '\0');
  for (char& byte : bytes) byte = static_cast<char>(random());
  return bytes;
}

// Collects the cache's warnings instead of printing them.
struct Reports {
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) { lines.push_back(line); };
  }
};

KernelCacheOptions disk_only(const TempDir& dir, Reports& reports, size_t disk_bytes = size_t{64} << 20) {
  KernelCacheOptions options;
  options.directory = dir.str();
  options.memory_bytes = 0;  // every lookup goes to disk
  options.disk_bytes = disk_bytes;
  options.report = reports.sink();
  return options;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

TEST(KernelCacheTest, MissThenHitInMemoryAndFromDiskInAnotherCache) {
  TempDir dir;
  Reports reports;
  KernelCacheOptions options;
  options.directory = dir.str();
  options.report = reports.sink();
  const std::string bytes = payload_for(1, 5000);
  {
    KernelCache cache(options);
    EXPECT_TRUE(cache.disk_enabled());
    EXPECT_FALSE(cache.lookup(key_for(7)));
    cache.store(key_for(7), bytes);
    EXPECT_EQ(cache.lookup(key_for(7)), bytes);
    EXPECT_EQ(cache.stats().memory_hits, 1u);
    EXPECT_EQ(cache.stats().misses, 1u);
    EXPECT_TRUE(fs::exists(cache.entry_path(key_for(7))));
  }
  KernelCache fresh(options);  // a new process, in effect
  EXPECT_EQ(fresh.lookup(key_for(7)), bytes);
  EXPECT_EQ(fresh.stats().disk_hits, 1u);
  EXPECT_EQ(fresh.lookup(key_for(7)), bytes);
  EXPECT_EQ(fresh.stats().memory_hits, 1u);  // the disk hit was kept in memory
  EXPECT_TRUE(reports.lines.empty());
}

TEST(KernelCacheTest, EmptyPayloadIsAnEntryLikeAnyOther) {
  TempDir dir;
  Reports reports;
  KernelCache writer(disk_only(dir, reports));
  writer.store(key_for(1), "");
  KernelCache reader(disk_only(dir, reports));
  std::optional<std::string> found = reader.lookup(key_for(1));
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, "");
}

TEST(KernelCacheTest, EveryKeyFieldSeparatesEntries) {
  TempDir dir;
  Reports reports;
  KernelCacheOptions options;
  options.directory = dir.str();
  options.report = reports.sink();
  KernelCache cache(options);
  const KernelKey base = key_for(42);
  cache.store(base, "base");

  std::vector<std::pair<std::string, KernelKey>> variants;
  auto vary = [&](std::string field, auto change) {
    KernelKey key = base;
    change(key);
    variants.emplace_back(std::move(field), key);
  };
  vary("loss_hash", [](KernelKey& k) { k.loss_hash = 43; });
  vary("backend", [](KernelKey& k) { k.backend = "cuda"; });
  vary("target", [](KernelKey& k) { k.target = "x86_64 znver3 +avx2,+fma"; });
  vary("dtype", [](KernelKey& k) { k.dtype = "f64"; });
  vary("lossforge_version", [](KernelKey& k) { k.lossforge_version = "0.0.1"; });
  vary("compiler_version", [](KernelKey& k) { k.compiler_version = "LLVM 17.0.0"; });
  vary("variant", [](KernelKey& k) { k.variant = "threads=2"; });
  // Moving characters between fields must not make the same key text.
  vary("field boundaries", [](KernelKey& k) {
    k.backend = "llvmx";
    k.target = k.target.substr(1);
  });

  for (const auto& [field, key] : variants) {
    SCOPED_TRACE(field);
    EXPECT_NE(key.text(), base.text());
    EXPECT_NE(key.digest(), base.digest());
    EXPECT_NE(cache.entry_path(key), cache.entry_path(base));
    EXPECT_FALSE(cache.lookup(key));
  }
  EXPECT_EQ(cache.lookup(base), "base");
  EXPECT_EQ(base.lossforge_version, std::string(lossforge_version()));
  EXPECT_FALSE(base.lossforge_version.empty());
}

TEST(KernelCacheTest, GetOrBuildBuildsOnceThenServesTheStoredBytes) {
  TempDir dir;
  Reports reports;
  KernelCache cache(disk_only(dir, reports));
  int builds = 0;
  auto build = [&] {
    ++builds;
    return std::string("object code");
  };
  EXPECT_EQ(cache.get_or_build(key_for(3), build), "object code");
  EXPECT_EQ(cache.get_or_build(key_for(3), build), "object code");
  EXPECT_EQ(builds, 1);
  // A build that throws stores nothing.
  EXPECT_THROW(cache.get_or_build(key_for(4), []() -> std::string { throw std::runtime_error("no"); }),
               std::runtime_error);
  EXPECT_FALSE(cache.lookup(key_for(4)));
}

// Damages the stored entry of `key` with `damage`, then expects one miss, one
// report naming `why`, the file gone, and a rebuild that works.
void expect_detected(const std::function<void(std::string& file)>& damage, const std::string& why) {
  SCOPED_TRACE(why);
  TempDir dir;
  Reports reports;
  KernelCache cache(disk_only(dir, reports));
  const KernelKey key = key_for(9);
  const std::string bytes = payload_for(9, 3000);
  cache.store(key, bytes);
  const std::string path = cache.entry_path(key);
  std::string file = read_file(path);
  damage(file);
  write_file(path, file);

  EXPECT_FALSE(cache.lookup(key));
  ASSERT_EQ(reports.lines.size(), 1u);
  EXPECT_NE(reports.lines[0].find(path), std::string::npos) << reports.lines[0];
  EXPECT_NE(reports.lines[0].find(why), std::string::npos) << reports.lines[0];
  EXPECT_FALSE(fs::exists(path)) << "a damaged entry is removed";
  EXPECT_EQ(cache.stats().corrupt_entries, 1u);

  // The caller rebuilds; the new entry is good.
  cache.store(key, bytes);
  EXPECT_EQ(cache.lookup(key), bytes);

  // Damaged again at the same place: counted, but reported only once per process.
  write_file(path, file);
  EXPECT_FALSE(cache.lookup(key));
  EXPECT_EQ(cache.stats().corrupt_entries, 2u);
  EXPECT_EQ(reports.lines.size(), 1u);
}

TEST(KernelCacheTest, DamagedEntriesAreDetectedReportedOnceAndRebuilt) {
  expect_detected([](std::string& f) { f[f.size() / 2] ^= 0x10; }, "checksum mismatch");
  expect_detected([](std::string& f) { f[40] ^= 0x01; }, "checksum mismatch");  // inside the stored key
  expect_detected([](std::string& f) { f[20] ^= 0x01; }, "length mismatch");    // header's payload length
  expect_detected([](std::string& f) { f.resize(f.size() - 1); }, "length mismatch");
  expect_detected([](std::string& f) { f.resize(f.size() / 2); }, "length mismatch");
  expect_detected([](std::string& f) { f += "x"; }, "length mismatch");
  expect_detected([](std::string& f) { f.resize(20); }, "truncated header");
  expect_detected([](std::string& f) { f.clear(); }, "truncated header");
  expect_detected([](std::string& f) { f = payload_for(123, 4096); }, "not a lossforge kernel cache entry");
  expect_detected([](std::string& f) { f = "#!/bin/sh\necho hello\n" + std::string(100, ' '); },
                  "not a lossforge kernel cache entry");
}

TEST(KernelCacheTest, AnotherFormatVersionIsAQuietMissAndIsReplaced) {
  TempDir dir;
  Reports reports;
  KernelCache cache(disk_only(dir, reports));
  cache.store(key_for(5), "old");
  const std::string path = cache.entry_path(key_for(5));
  std::string file = read_file(path);
  file[8] = 99;  // format version 99
  write_file(path, file);
  EXPECT_FALSE(cache.lookup(key_for(5)));
  EXPECT_TRUE(reports.lines.empty());
  cache.store(key_for(5), "new");
  EXPECT_EQ(cache.lookup(key_for(5)), "new");
}

TEST(KernelCacheTest, AValidEntryOfAnotherKeyAtTheSamePathIsAMiss) {
  TempDir dir;
  Reports reports;
  KernelCache cache(disk_only(dir, reports));
  cache.store(key_for(1), "one");
  // Simulate a digest collision: key 1's entry under key 2's file name.
  fs::copy_file(cache.entry_path(key_for(1)), cache.entry_path(key_for(2)));
  EXPECT_FALSE(cache.lookup(key_for(2)));
  EXPECT_TRUE(reports.lines.empty());
  EXPECT_EQ(cache.lookup(key_for(1)), "one");
}

TEST(KernelCacheTest, MemoryTierIsABoundedLeastRecentlyUsedMap) {
  KernelCacheOptions options;
  options.directory = "";  // memory only, silently
  options.memory_bytes = 5000;
  Reports reports;
  options.report = reports.sink();
  KernelCache cache(options);
  EXPECT_FALSE(cache.disk_enabled());
  cache.store(key_for(1), std::string(2000, 'a'));
  cache.store(key_for(2), std::string(2000, 'b'));
  EXPECT_TRUE(cache.lookup(key_for(1)));  // 1 is now the most recent
  cache.store(key_for(3), std::string(2000, 'c'));
  EXPECT_FALSE(cache.lookup(key_for(2)));  // the least recently used went
  EXPECT_TRUE(cache.lookup(key_for(1)));
  EXPECT_TRUE(cache.lookup(key_for(3)));
  EXPECT_EQ(cache.stats().memory_evictions, 1u);
  cache.store(key_for(4), std::string(6000, 'd'));  // larger than the whole tier: not kept
  EXPECT_FALSE(cache.lookup(key_for(4)));
  EXPECT_TRUE(cache.lookup(key_for(1)));
  EXPECT_TRUE(reports.lines.empty());
}

TEST(KernelCacheTest, DiskIsKeptUnderItsBoundByEvictingTheOldestAccessFirst) {
  TempDir dir;
  Reports reports;
  // Each entry is 2000 payload bytes plus a ~150-byte header and key: four fit in 10,000.
  KernelCache cache(disk_only(dir, reports, 10000));
  for (uint64_t i = 1; i <= 4; ++i) cache.store(key_for(i), payload_for(i, 2000));
  // Distinct access times without sleeping: entry i was used (5 - i) minutes ago.
  const auto now = fs::file_time_type::clock::now();
  for (uint64_t i = 1; i <= 4; ++i) {
    EXPECT_TRUE(fs::exists(cache.entry_path(key_for(i)))) << i;
    fs::last_write_time(cache.entry_path(key_for(i)), now - std::chrono::minutes(5 - i));
  }
  EXPECT_EQ(cache.lookup(key_for(1)), payload_for(1, 2000));  // refreshes 1: now 2 is the oldest access

  // Files that are not entries are never evicted; a dead writer's old temporary file is.
  const fs::path foreign = dir.path() / "README";
  write_file(foreign.string(), "not a cache entry");
  const fs::path stale = dir.path() / ".0123456789abcdef.lfk.tmp-1-2-3";
  write_file(stale.string(), "half written");
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));

  cache.store(key_for(5), payload_for(5, 2000));  // over the bound: evict down to 80% of it
  EXPECT_FALSE(fs::exists(cache.entry_path(key_for(2))));
  EXPECT_FALSE(fs::exists(cache.entry_path(key_for(3))));
  EXPECT_TRUE(fs::exists(cache.entry_path(key_for(1))));
  EXPECT_TRUE(fs::exists(cache.entry_path(key_for(4))));
  EXPECT_TRUE(fs::exists(cache.entry_path(key_for(5))));
  EXPECT_EQ(cache.stats().evicted_entries, 2u);
  EXPECT_TRUE(fs::exists(foreign));
  EXPECT_FALSE(fs::exists(stale));

  size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    if (entry.path().extension() == ".lfk") total += entry.file_size();
  }
  EXPECT_LE(total, 10000u);
  EXPECT_TRUE(reports.lines.empty());

  // An entry larger than the whole bound stays in memory only.
  cache.store(key_for(6), payload_for(6, 20000));
  EXPECT_FALSE(fs::exists(cache.entry_path(key_for(6))));
}

TEST(KernelCacheTest, UnusableDirectoryMeansMemoryOnlyWithOneWarning) {
  TempDir dir;
  // A directory below a regular file cannot be created, not even by root.
  const fs::path blocker = dir.path() / "file";
  write_file(blocker.string(), "x");
  Reports reports;
  KernelCacheOptions options;
  options.directory = (blocker / "cache").string();
  options.report = reports.sink();
  KernelCache cache(options);
  EXPECT_FALSE(cache.disk_enabled());
  ASSERT_EQ(reports.lines.size(), 1u);
  EXPECT_NE(reports.lines[0].find("memory only"), std::string::npos) << reports.lines[0];
  cache.store(key_for(1), "kept in memory");
  cache.store(key_for(2), "also");
  EXPECT_EQ(cache.lookup(key_for(1)), "kept in memory");
  EXPECT_EQ(reports.lines.size(), 1u);
}

TEST(KernelCacheTest, ReadOnlyDirectoryMeansMemoryOnlyWithOneWarning) {
  if (::geteuid() == 0) {
    // Root writes into a read-only directory; use a path that is no directory instead.
    TempDir dir;
    write_file((dir.path() / "plain").string(), "x");
    Reports reports;
    KernelCacheOptions options;
    options.directory = (dir.path() / "plain").string();
    options.report = reports.sink();
    KernelCache cache(options);
    EXPECT_FALSE(cache.disk_enabled());
    EXPECT_EQ(reports.lines.size(), 1u);
    return;
  }
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  Reports reports;
  KernelCacheOptions options;
  options.directory = dir.str();
  options.report = reports.sink();
  KernelCache cache(options);
  EXPECT_FALSE(cache.disk_enabled());
  ASSERT_EQ(reports.lines.size(), 1u);
  cache.store(key_for(1), "memory");
  EXPECT_EQ(cache.lookup(key_for(1)), "memory");
  EXPECT_EQ(reports.lines.size(), 1u);
}

TEST(KernelCacheTest, DirectoryThatBreaksLaterFallsBackToMemoryWithOneWarning) {
  TempDir dir;
  const fs::path cache_dir = dir.path() / "cache";
  Reports reports;
  KernelCacheOptions options;
  options.directory = cache_dir.string();
  options.report = reports.sink();
  KernelCache cache(options);
  ASSERT_TRUE(cache.disk_enabled());
  cache.store(key_for(1), "on disk");
  // Someone replaces the directory with a file (fails for root too).
  fs::remove_all(cache_dir);
  write_file(cache_dir.string(), "x");
  cache.store(key_for(2), "memory");  // must not throw
  cache.store(key_for(3), "memory");
  EXPECT_FALSE(cache.disk_enabled());
  ASSERT_EQ(reports.lines.size(), 1u) << reports.lines.back();
  EXPECT_NE(reports.lines[0].find("memory only"), std::string::npos);
  EXPECT_EQ(cache.lookup(key_for(2)), "memory");
  EXPECT_EQ(cache.lookup(key_for(1)), "on disk");  // still in memory
}

// Two (here: four) processes write and read the same keys at once, with
// entries of varying size; one pass also evicts under a small bound. No reader
// may see a torn or foreign entry and nothing may be reported as corrupt.
void run_concurrent_processes(size_t disk_bytes) {
  TempDir dir;
  constexpr int kProcesses = 4;
  constexpr int kRounds = 400;
  constexpr uint64_t kKeys = 40;
  auto expected = [](uint64_t k) { return payload_for(k, 1000 + 997 * k); };

  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child: no gtest assertions, just an exit status.
      int status = 0;
      Reports reports;
      KernelCache cache(disk_only(dir, reports, disk_bytes));
      std::mt19937_64 random(1000 + p);
      for (int round = 0; round < kRounds && status == 0; ++round) {
        const uint64_t k = random() % kKeys;
        std::optional<std::string> found = cache.lookup(key_for(k));
        if (found && *found != expected(k)) status = 2;  // torn or mixed-up entry
        // Misses store; some hits store again, as two processes that compiled
        // the same kernel at once would, so that entries are replaced under readers.
        if (!found || random() % 4 == 0) cache.store(key_for(k), expected(k));
      }
      for (const std::string& line : reports.lines) std::fprintf(stderr, "child %d: %s\n", p, line.c_str());
      if (status == 0 && !reports.lines.empty()) status = 3;  // corruption reported or disk given up
      if (status == 0 && cache.stats().disk_hits == 0) status = 4;  // never met another's entry
      ::_exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "2: wrong bytes, 3: reports, 4: no disk hits";
  }
  // What is left is whole, and no temporary files remain.
  Reports reports;
  KernelCache check(disk_only(dir, reports, disk_bytes));
  for (uint64_t k = 0; k < kKeys; ++k) {
    if (std::optional<std::string> found = check.lookup(key_for(k))) {
      EXPECT_EQ(*found, expected(k)) << k;
    }
  }
  EXPECT_TRUE(reports.lines.empty());
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().extension(), ".lfk") << entry.path();
  }
}

TEST(KernelCacheTest, ConcurrentProcessesShareOneDirectory) { run_concurrent_processes(size_t{64} << 20); }

TEST(KernelCacheTest, ConcurrentProcessesEvictingUnderASmallBound) { run_concurrent_processes(200000); }

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(KernelCacheTest, DefaultDirectoryFollowsLossforgeThenXdgThenHome) {
  {
    ScopedEnv a("LOSSFORGE_CACHE_DIR", "/tmp/lf-cache");
    ScopedEnv b("XDG_CACHE_HOME", "/tmp/xdg");
    EXPECT_EQ(default_cache_directory(), "/tmp/lf-cache");
  }
  {
    ScopedEnv a("LOSSFORGE_CACHE_DIR", "");
    ScopedEnv b("XDG_CACHE_HOME", "/tmp/xdg");
    EXPECT_EQ(default_cache_directory(), "/tmp/xdg/lossforge");
  }
  {
    ScopedEnv a("LOSSFORGE_CACHE_DIR", nullptr);
    ScopedEnv b("XDG_CACHE_HOME", "relative/ignored");
    ScopedEnv c("HOME", "/home/someone");
    EXPECT_EQ(default_cache_directory(), "/home/someone/.cache/lossforge");
  }
  {
    ScopedEnv a("LOSSFORGE_CACHE_DIR", nullptr);
    ScopedEnv b("XDG_CACHE_HOME", nullptr);
    ScopedEnv c("HOME", nullptr);
    EXPECT_EQ(default_cache_directory(), "");
  }
  TempDir dir;
  ScopedEnv a("LOSSFORGE_CACHE_DIR", (dir.path() / "from-env").c_str());
  Reports reports;
  KernelCacheOptions options;
  options.report = reports.sink();
  KernelCache cache(options);
  EXPECT_EQ(cache.directory(), (dir.path() / "from-env").string());
  EXPECT_TRUE(fs::is_directory(dir.path() / "from-env"));
}

}  // namespace
}  // namespace lossforge
