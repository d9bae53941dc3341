// `lossforge compile`: the files it writes, what they declare, and that an
// unchanged loss leaves them untouched (so builds do not recompile them).
// examples/aot_train built against the installed package is the aot_install test.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int run(const std::string& arguments, const fs::path& dir) {
  const std::string command = std::string(LOSSFORGE_CLI) + " " + arguments + " > " + (dir / "out.txt").string() + " 2> " +
                              (dir / "err.txt").string();
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("lossforge_compile_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(CompileCommand, WritesHeaderHostAndCudaSources) {
  const fs::path dir = fresh_dir("files");
  const std::string examples = LOSSFORGE_SOURCE_DIR "/examples/losses/";
  ASSERT_EQ(run("compile " + examples + "cse_autoloss_b.loss -o " + (dir / "gen").string(), dir), 0) << read(dir / "err.txt");
  const std::string hpp = read(dir / "gen/cse_autoloss_b.hpp");
  const std::string cpp = read(dir / "gen/cse_autoloss_b.cpp");
  const std::string cu = read(dir / "gen/cse_autoloss_b.cu");
  for (const char* loss : {"cse_autoloss_b_cls", "cse_autoloss_b_reg"}) {
    const std::string symbol = std::string("lossforge_") + loss;
    EXPECT_NE(hpp.find("extern \"C\" double " + symbol + "_f32("), std::string::npos) << loss;
    EXPECT_NE(hpp.find("extern \"C\" int " + symbol + "_cuda_f64("), std::string::npos) << loss;
    EXPECT_NE(hpp.find(std::string("namespace lossforge_aot::") + loss + " {"), std::string::npos) << loss;
    EXPECT_NE(cpp.find("extern \"C\" double " + symbol + "_f64("), std::string::npos) << loss;
    EXPECT_NE(cu.find("__global__ void __launch_bounds__(256) " + symbol + "_f32_rows("), std::string::npos) << loss;
    EXPECT_NE(cu.find("extern \"C\" int " + symbol + "_cuda_f32("), std::string::npos) << loss;
    EXPECT_NE(hpp.find("extern \"C\" int " + symbol + "_cuda_bf16("), std::string::npos) << loss;
    EXPECT_NE(cu.find("extern \"C\" int " + symbol + "_cuda_f16("), std::string::npos) << loss;
  }
  EXPECT_NE(hpp.find("inline constexpr const char* kInputNames[] = {\"X\", \"Q\", \"PY\", \"NY\"};"), std::string::npos);
  EXPECT_NE(cpp.find("namespace lossforge::sem"), std::string::npos) << "self-contained: the semantics are embedded";
  EXPECT_EQ(cpp.find("#include \"compiler/"), std::string::npos);
  fs::remove_all(dir);
}

// The sources are those of the simplified loss, as the JIT engines compile
// it: CSE-Autoloss-A's log(softmax(X)) is log_softmax(X).
TEST(CompileCommand, CompilesTheSimplifiedLoss) {
  const fs::path dir = fresh_dir("simplified");
  ASSERT_EQ(run("compile " LOSSFORGE_SOURCE_DIR "/examples/losses/cse_autoloss_a.loss -o " + dir.string(), dir), 0)
      << read(dir / "err.txt");
  for (const char* file : {"cse_autoloss_a.cpp", "cse_autoloss_a.cu"}) {
    const std::string code = read(dir / file);
    EXPECT_NE(code.find("gen::log_softmax_column("), std::string::npos) << file;
  }
  fs::remove_all(dir);
}

TEST(CompileCommand, UnchangedOutputsAreNotRewritten) {
  const fs::path dir = fresh_dir("again");
  const std::string focal = LOSSFORGE_SOURCE_DIR "/examples/losses/focal.loss";
  ASSERT_EQ(run("compile " + focal + " -o " + dir.string(), dir), 0);
  const auto old_time = fs::last_write_time(dir / "focal.cpp");
  fs::last_write_time(dir / "focal.cpp", old_time - std::chrono::hours(1));
  ASSERT_EQ(run("compile " + focal + " -o " + dir.string(), dir), 0);
  EXPECT_EQ(fs::last_write_time(dir / "focal.cpp"), old_time - std::chrono::hours(1));
  fs::remove_all(dir);
}

TEST(CompileCommand, FormulasAndErrors) {
  const fs::path dir = fresh_dir("formula");
  ASSERT_EQ(run("compile 'Neg(Log(Sig(X)))' --pset binary_cls --base mine -o " + dir.string(), dir), 0) << read(dir / "err.txt");
  EXPECT_TRUE(fs::exists(dir / "mine.hpp"));
  EXPECT_NE(read(dir / "mine.hpp").find("lossforge_formula_f32"), std::string::npos);
  EXPECT_EQ(run("compile 'Neg(Log(Sigg(X)))' --pset binary_cls -o " + dir.string(), dir), 1);
  EXPECT_EQ(run("compile " LOSSFORGE_SOURCE_DIR "/examples/losses/focal.loss", dir), 2) << "-o is required";
  fs::remove_all(dir);
}

}  // namespace
