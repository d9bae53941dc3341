// write_file_atomic: the whole new contents or the old file, never a mix.
#include "runtime/files.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

#include "compiler/error.hpp"

namespace {

namespace fs = std::filesystem;

class WriteFileAtomicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lossforge-files-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {})); }

  fs::path dir_;
};

TEST_F(WriteFileAtomicTest, CreatesANewFile) {
  const fs::path path = dir_ / "new.txt";
  lossforge::write_file_atomic(path.string(), "hello\n");
  EXPECT_EQ(read(path), "hello\n");
  EXPECT_EQ(entries(), 1u) << "no temporary file is left behind";
}

TEST_F(WriteFileAtomicTest, ReplacesAnExistingFileKeepingItsPermissions) {
  const fs::path path = dir_ / "old.txt";
  std::ofstream(path) << "a much longer old text than the new one\n";
  ASSERT_EQ(chmod(path.c_str(), 0604), 0);
  lossforge::write_file_atomic(path.string(), "new");
  EXPECT_EQ(read(path), "new");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WriteFileAtomicTest, WritesEmptyAndBinaryContents) {
  const fs::path path = dir_ / "data.bin";
  const std::string bytes("\0\x01\xff\n\0", 5);
  lossforge::write_file_atomic(path.string(), bytes);
  EXPECT_EQ(read(path), bytes);
  lossforge::write_file_atomic(path.string(), "");
  EXPECT_EQ(read(path), "");
}

TEST_F(WriteFileAtomicTest, FollowsSymbolicLinks) {
  const fs::path target = dir_ / "target.txt";
  const fs::path link = dir_ / "link.txt";
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  lossforge::write_file_atomic(link.string(), "new");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read(target), "new");
}

TEST_F(WriteFileAtomicTest, FailuresNameThePathAndLeaveNothingBehind) {
  const fs::path missing_dir = dir_ / "no" / "such" / "dir" / "file.txt";
  try {
    lossforge::write_file_atomic(missing_dir.string(), "x");
    FAIL() << "expected an error";
  } catch (const lossforge::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(lossforge::write_file_atomic(dir_.string(), "x"), lossforge::Error) << "a directory";
  EXPECT_THROW(lossforge::write_file_atomic("", "x"), lossforge::Error);
  EXPECT_EQ(entries(), 0u);
}


TEST_F(WriteFileAtomicTest, ReadFileReturnsTheBytesAndNamesAMissingPath) {
  const fs::path path = dir_ / "data.bin";
  const std::string bytes("\0\x01\xff\n\0", 5);
  lossforge::write_file_atomic(path.string(), bytes);
  EXPECT_EQ(lossforge::read_file(path.string()), bytes);
  lossforge::write_file_atomic(path.string(), "");
  EXPECT_EQ(lossforge::read_file(path.string()), "");
  try {
    lossforge::read_file((dir_ / "missing.txt").string());
    FAIL() << "a missing file must throw";
  } catch (const lossforge::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos) << e.what();
  }
}

}  // namespace
