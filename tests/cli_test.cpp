// The `lossforge` executable, driven as a user drives it: real processes on
// temporary files, checking stdout, stderr and the exit status (SPEC §5).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/codegen_cuda.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using lossforge::CudaDType;
using lossforge::round_to_storage;
using nlohmann::json;

// ---- running the executable -------------------------------------------------

struct CliRun {
  int status = -1;      // exit status; -1 when killed by a signal
  int signal = 0;       // the signal that ended it, 0 if none
  bool timed_out = false;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CliRun& run) {
  return os << "status " << run.status << " signal " << run.signal << "\n--- stdout\n"
            << run.out << "--- stderr\n"
            << run.err;
}

// Runs lossforge with `args`, feeding `input` on stdin; kills it after 60 s.
CliRun run_cli(const std::vector<std::string>& args, const std::string& input = {}) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC) || pipe2(in_pipe, O_CLOEXEC)) std::abort();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);

  std::vector<std::string> argv_strings = {LOSSFORGE_CLI};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, LOSSFORGE_CLI, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(in_pipe[0]);
  CliRun run;
  if (spawned != 0) {
    run.err = "cannot start " LOSSFORGE_CLI;
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(in_pipe[1]);
    return run;
  }

  // Pump stdin, stdout and stderr together so that no pipe fills up and blocks.
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[65536];
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        (i == 0 ? run.out : run.err).append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        (i == 0 ? out_fd : err_fd) = -1;
      }
    }
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {out_fd, err_fd, in_fd})
    if (fd >= 0) close(fd);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  if (WIFEXITED(wstatus)) run.status = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) run.signal = WTERMSIG(wstatus);
  return run;
}

template <class T>
std::string shortest_text(T value) {
  char buffer[64];
  return std::string(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
}

bool is_one_line(const std::string& text) {
  return !text.empty() && text.back() == '\n' && text.find('\n') == text.size() - 1;
}

// ---- reference semantics (SPEC §3), in double -----------------------------------

double sigmoid(double a) { return 1 / (1 + std::exp(-a)); }
double plog(double a) { return std::log(a + 1e-20); }
double pdiv(double a, double b) { return a / (b + 1e-20); }
double serf(double a) { return (std::erf(std::sqrt(std::numbers::pi) / 2 * a / 2) + 1) / 2; }
double sgdf(double a) {
  return ((2 / std::numbers::pi) * 2 * std::atan(std::tanh(std::numbers::pi * a / 8)) + 1) / 2;
}

using Box = std::array<double, 4>;

struct BoxTerms {
  double I, U, E;
};

// The `reg` preset's derived values.
BoxTerms box_terms(const Box& p, const Box& g) {
  auto clamp0 = [](double v) { return std::max(v, 0.0); };
  const double iw = std::min(p[2], g[2]) - std::max(p[0], g[0]);
  const double ih = std::min(p[3], g[3]) - std::max(p[1], g[1]);
  const double I = clamp0(iw) * clamp0(ih);
  const double area_p = (p[2] - p[0]) * (p[3] - p[1]);
  const double area_g = (g[2] - g[0]) * (g[3] - g[1]);
  const double U = area_p + area_g - I + 1e-7;
  const double ew = std::max(p[2], g[2]) - std::min(p[0], g[0]);
  const double eh = std::max(p[3], g[3]) - std::min(p[1], g[1]);
  const double E = clamp0(ew) * clamp0(eh) + 1e-7;
  return {I, U, E};
}

double focal(double x, double y, double alpha = 0.25, double gamma = 2) {
  const double p = sigmoid(x);
  const double pt = p * y + (1 - p) * (1 - y);
  const double at = alpha * y + (1 - alpha) * (1 - y);
  return -at * std::pow(1 - pt, gamma) * plog(pt);
}

double giou(const Box& p, const Box& g) {
  auto [I, U, E] = box_terms(p, g);
  return 1 - pdiv(I, U) + pdiv(E - U, E);
}

std::vector<double> softmax(const std::vector<double>& x) {
  double top = *std::max_element(x.begin(), x.end());
  std::vector<double> e;
  double sum = 0;
  for (double v : x) sum += e.emplace_back(std::exp(v - top));
  for (double& v : e) v /= sum;
  return e;
}

double cse_a_cls(const std::vector<double>& X, const std::vector<double>& Y, const std::vector<double>& Z) {
  const auto s = softmax(X);
  double dot = 0;
  for (size_t c = 0; c < X.size(); ++c) dot += Y[c] * (1 + std::sin(Z[c])) * plog(s[c]);
  return -dot;
}

double cse_a_reg(const Box& p, const Box& g) {
  auto [I, U, E] = box_terms(p, g);
  return 1 + -(pdiv(I, U) + -pdiv(E + -(I + 2), E));
}

double cse_b_cls(double X, double Q, double PY, double NY) {
  const double s = sigmoid(X);
  const double first = Q * ((1 + serf(sigmoid(NY))) * plog(s));
  const double second = (sgdf(X) + -Q) * (((1 + -Q) + -(1 + -s)) * plog(1 + -s));
  return -(first + second);
}

double cse_b_reg(const Box& p, const Box& g) {
  auto [I, U, E] = box_terms(p, g);
  const double a = pdiv(-(-E + (1 + I)), -(3 + (2 + U))) + (pdiv(E, E) + pdiv(-E, -1));
  const double b = -(pdiv(-(U + pdiv(I, 1)), -3) + -E);
  return -pdiv(a, b);
}

// Central difference of f at v[i].
template <class F>
double numeric_derivative(F f, std::vector<double> v, size_t i) {
  const double h = 1e-6 * std::max(1.0, std::abs(v[i]));
  v[i] += h;
  const double up = f(v);
  v[i] -= 2 * h;
  const double down = f(v);
  return (up - down) / (2 * h);
}

// ---- fixture ----------------------------------------------------------------------

constexpr const char* kFocalFile = R"(# the focal loss of SPEC §2
loss focal(pred x: real, y: real) {
  param alpha = 0.25
  param gamma = 2
  let p  = sigmoid(x)
  let pt = p * y + (1 - p) * (1 - y)
  let at = alpha * y + (1 - alpha) * (1 - y)
  -at * (1 - pt)^gamma * log(pt)
}
)";

constexpr const char* kSpecExamples = R"(loss focal(pred x: real, y: real) {
  param alpha = 0.25
  param gamma = 2
  let p  = sigmoid(x)
  let pt = p * y + (1 - p) * (1 - y)
  let at = alpha * y + (1 - alpha) * (1 - y)
  -at * (1 - pt)^gamma * log(pt)
}
loss ce(pred x: real[C], y: real[C]) = -dot(y, log(softmax(x)))
loss giou(pred p: box, g: box) {
  let i = inter(p, g)
  let u = area(p) + area(g) - i + 1e-7
  let e = enclose(p, g) + 1e-7
  1 - i / u + (e - u) / e
}
)";

constexpr const char* kCseACls = "Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))";
constexpr const char* kCseAReg = "Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))";
constexpr const char* kCseBCls =
    "Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),Neg(Add(1,"
    "Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))";
constexpr const char* kCseBReg =
    "Neg(Div(Add(Div(Neg(Add(Neg(E),Add(1,I))),Neg(Add(3,Add(2,U)))),Add(Div(E,E),Div(Neg(E),Neg(1)))),Neg(Add(Div("
    "Neg(Add(U,Div(I,1))),Neg(3)),Neg(E)))))";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lossforge-cli-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::string write_json(const std::string& name, const json& value) { return write(name, value.dump()); }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // eval --json, expecting success; returns the parsed output.
  json eval_json(std::vector<std::string> args) {
    args.insert(args.begin(), "eval");
    args.push_back("--json");
    const CliRun run = run_cli(args);
    EXPECT_EQ(run.status, 0) << run;
    EXPECT_EQ(run.err, "");
    try {
      return json::parse(run.out);
    } catch (const json::exception&) {
      ADD_FAILURE() << "not JSON: " << run.out;
      return json::object();
    }
  }

  // An input error: exit 1, one line on stderr starting "lossforge: " and holding `needle`.
  void expect_input_error(const std::string& loss_file, const std::string& inputs_text, const std::string& needle) {
    const std::string inputs = write("in.json", inputs_text);
    const CliRun run = run_cli({"eval", loss_file, "--inputs", inputs, "--json"});
    EXPECT_EQ(run.status, 1) << run;
    EXPECT_TRUE(is_one_line(run.err)) << run;
    EXPECT_EQ(run.err.rfind("lossforge: ", 0), 0u) << run;
    EXPECT_NE(run.err.find(needle), std::string::npos) << "expected '" << needle << "' in\n" << run;
    EXPECT_EQ(run.out, "");
  }

  fs::path dir_;
};

void expect_near_relative(double actual, double expected, double tolerance, const std::string& what) {
  EXPECT_NEAR(actual, expected, tolerance * std::max(1.0, std::abs(expected))) << what;
}

// ---- eval: the JSON contract ---------------------------------------------------

TEST_F(CliTest, EvalPrintsShortestRoundTripNumbersForTheDtype) {
  const std::string loss = write("id.loss", "loss id(pred x: real) = x\n");
  const std::string inputs = write("in.json", R"({"x": [0.1, 1e-7, 3, -2.5]})");
  CliRun f32 = run_cli({"eval", loss, "--inputs", inputs, "--grad", "--json"});
  EXPECT_EQ(f32.status, 0) << f32;
  EXPECT_EQ(f32.out, "{\"loss\": [0.1, 1e-07, 3, -2.5], \"grad\": {\"x\": [1, 1, 1, 1]}}\n");
  CliRun f64 = run_cli({"eval", loss, "--inputs", inputs, "--dtype", "f64", "--json"});
  EXPECT_EQ(f64.status, 0) << f64;
  EXPECT_EQ(f64.out, "{\"loss\": [0.1, 1e-07, 3, -2.5]}\n");
  // 0.1 as a float is not 0.1 as a double: f32 results print the float's own shortest form.
  const std::string third = write("third.loss", "loss third(pred x: real) = x / 3\n");
  CliRun third_f32 = run_cli({"eval", third, "--inputs", inputs, "--json"});
  EXPECT_EQ(third_f32.out.substr(0, third_f32.out.find(',')), "{\"loss\": [" + shortest_text(0.1f / 3.0f)) << third_f32;
  CliRun third_f64 = run_cli({"eval", third, "--inputs", inputs, "--dtype", "f64", "--json"});
  EXPECT_EQ(third_f64.out.substr(0, third_f64.out.find(',')), "{\"loss\": [" + shortest_text(0.1 / 3.0)) << third_f64;
}

TEST_F(CliTest, EvalRealInputsWithGradientsInF32AndF64) {
  // Binary cross-entropy on logits: the gradient is sigmoid(x) - y.
  const std::string loss =
      write("bce.loss", "loss bce(pred x: real, y: real) = -(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))\n");
  const std::vector<double> x = {-3, -0.5, 0, 0.25, 2, 6};
  const std::vector<double> y = {0, 1, 1, 0, 1, 0};
  const std::string inputs = write_json("in.json", {{"x", x}, {"y", y}});
  for (const char* dtype : {"f32", "f64"}) {
    SCOPED_TRACE(dtype);
    // 1 - sigmoid(6) loses digits to cancellation in f32.
    const double tolerance = std::string(dtype) == "f32" ? 5e-5 : 1e-12;
    json out = eval_json({loss, "--inputs", inputs, "--grad", "--dtype", dtype});
    ASSERT_EQ(out["loss"].size(), x.size());
    ASSERT_EQ(out["grad"]["x"].size(), x.size());
    EXPECT_FALSE(out["grad"].contains("y")) << "y is not a pred input";
    for (size_t r = 0; r < x.size(); ++r) {
      const double s = sigmoid(x[r]);
      expect_near_relative(out["loss"][r].get<double>(), -(y[r] * plog(s) + (1 - y[r]) * plog(1 - s)), tolerance,
                           "loss row " + std::to_string(r));
      expect_near_relative(out["grad"]["x"][r].get<double>(), s - y[r], tolerance, "grad row " + std::to_string(r));
    }
  }
}

// f16 and bf16 are storage around float arithmetic: the inputs are rounded to
// the type, the loss is float, the gradients are values of the type.
TEST_F(CliTest, EvalInSixteenBitDtypesRoundsInputsAndGradients) {
  const std::string loss = write("sq.loss", "loss sq(pred x: real) = x * x / 3\n");
  const std::vector<double> x = {0.1, 1000.3, -3.14159, 1e-6};
  const std::string inputs = write_json("in.json", {{"x", x}});
  for (const char* dtype : {"f16", "bf16"}) {
    SCOPED_TRACE(dtype);
    const bool half = std::string(dtype) == "f16";
    auto round = [half](float v) { return round_to_storage(half ? CudaDType::F16 : CudaDType::BF16, v); };
    json out = eval_json({loss, "--inputs", inputs, "--grad", "--dtype", dtype});
    ASSERT_EQ(out["loss"].size(), x.size());
    for (size_t r = 0; r < x.size(); ++r) {
      const float xr = round(float(x[r]));
      const float square = xr * xr;
      expect_near_relative(out["loss"][r].get<double>(), square / 3.0f, 1e-7, "loss row " + std::to_string(r));
      const float g = out["grad"]["x"][r].get<float>();
      EXPECT_EQ(round(g), g) << "row " << r << ": the gradient " << g << " is not a " << dtype << " value";
      expect_near_relative(g, 2 * xr / 3, half ? 1e-3 : 8e-3, "grad row " + std::to_string(r));
    }
  }
  // Only the CUDA target has 16-bit kernels to print.
  const CliRun emit = run_cli({"emit", loss, "--target", "cpp", "--dtype", "bf16"});
  EXPECT_EQ(emit.status, 2) << emit;
  EXPECT_NE(emit.err.find("16-bit kernels are the CUDA target's"), std::string::npos) << emit;
  const CliRun cuda = run_cli({"emit", loss, "--target", "cuda", "--dtype", "bf16"});
  EXPECT_EQ(cuda.status, 0) << cuda;
  EXPECT_NE(cuda.out.find("lossforge_sq_bf16_rows"), std::string::npos);
  EXPECT_NE(cuda.out.find("typedef lossforge::storage::bfloat16 S;"), std::string::npos);
}

TEST_F(CliTest, EvalFocalLossMatchesTheFormula) {
  const std::string loss = write("focal.loss", kFocalFile);
  const std::vector<double> x = {-2, -0.1, 0.7, 3};
  const std::vector<double> y = {0, 1, 1, 0};
  const std::string inputs = write_json("in.json", {{"x", x}, {"y", y}});
  json out = eval_json({loss, "--inputs", inputs, "--grad", "--dtype", "f64"});
  for (size_t r = 0; r < x.size(); ++r) {
    expect_near_relative(out["loss"][r].get<double>(), focal(x[r], y[r]), 1e-12, "loss");
    const double slope = numeric_derivative([&](const std::vector<double>& v) { return focal(v[0], y[r]); }, {x[r]}, 0);
    expect_near_relative(out["grad"]["x"][r].get<double>(), slope, 1e-6, "grad");
  }
}

TEST_F(CliTest, EvalRowInputsWithGradients) {
  // Softmax cross-entropy over real[C]: the gradient is softmax(x) - y for one-hot y.
  const std::string loss = write("spec.loss", kSpecExamples);
  const std::vector<std::vector<double>> x = {{2, -1, 0.5}, {0, 0, 0}, {-4, 3, 1}};
  const std::vector<std::vector<double>> y = {{1, 0, 0}, {0, 0, 1}, {0, 1, 0}};
  const std::string inputs = write_json("in.json", {{"x", x}, {"y", y}});
  for (const char* dtype : {"f32", "f64"}) {
    SCOPED_TRACE(dtype);
    const double tolerance = std::string(dtype) == "f32" ? 2e-6 : 1e-12;
    json out = eval_json({loss, "--loss", "ce", "--inputs", inputs, "--grad", "--dtype", dtype});
    ASSERT_EQ(out["loss"].size(), 3u);
    for (size_t r = 0; r < x.size(); ++r) {
      const auto s = softmax(x[r]);
      double expected = 0;
      for (size_t c = 0; c < 3; ++c) expected -= y[r][c] * plog(s[c]);
      expect_near_relative(out["loss"][r].get<double>(), expected, tolerance, "loss");
      ASSERT_EQ(out["grad"]["x"][r].size(), 3u) << "the gradient of a real[C] row is a row";
      for (size_t c = 0; c < 3; ++c)
        expect_near_relative(out["grad"]["x"][r][c].get<double>(), s[c] - y[r][c], tolerance, "grad");
    }
  }
}

TEST_F(CliTest, EvalBoxInputsWithGradients) {
  const std::string loss = write("spec.loss", kSpecExamples);
  const std::vector<Box> p = {{0, 0, 10, 10}, {1, 2, 4, 8}, {0, 0, 2, 2}};
  const std::vector<Box> g = {{1, 1, 9, 12}, {2, 1, 6, 7}, {5, 5, 7, 9}};  // the last pair does not overlap
  const std::string inputs = write_json("in.json", {{"p", p}, {"g", g}});
  for (const char* dtype : {"f32", "f64"}) {
    SCOPED_TRACE(dtype);
    const double tolerance = std::string(dtype) == "f32" ? 1e-5 : 1e-7;
    json out = eval_json({loss, "--loss", "giou", "--inputs", inputs, "--grad", "--dtype", dtype});
    ASSERT_EQ(out["loss"].size(), p.size());
    for (size_t r = 0; r < p.size(); ++r) {
      expect_near_relative(out["loss"][r].get<double>(), giou(p[r], g[r]), tolerance, "loss");
      ASSERT_EQ(out["grad"]["p"][r].size(), 4u) << "the gradient of a box is a box";
      for (size_t k = 0; k < 4; ++k) {
        auto f = [&](const std::vector<double>& v) { return giou({v[0], v[1], v[2], v[3]}, g[r]); };
        const double slope = numeric_derivative(f, {p[r].begin(), p[r].end()}, k);
        expect_near_relative(out["grad"]["p"][r][k].get<double>(), slope, tolerance * 10, "grad");
      }
    }
  }
}

TEST_F(CliTest, EvalWithoutRowsPrintsEmptyResults) {
  const std::string loss = write("spec.loss", kSpecExamples);
  const std::string inputs = write("in.json", R"({"x": [], "y": []})");
  json out = eval_json({loss, "--loss", "ce", "--inputs", inputs, "--grad"});
  EXPECT_EQ(out, json::parse(R"({"loss": [], "grad": {"x": []}})"));
}

TEST_F(CliTest, EvalReadsInputsFromStandardInput) {
  const std::string loss = write("id.loss", "loss id(pred x: real) = 2 * x\n");
  const CliRun run = run_cli({"eval", loss, "--inputs", "-", "--json"}, R"({"x": [1.5]})");
  EXPECT_EQ(run.status, 0) << run;
  EXPECT_EQ(run.out, "{\"loss\": [3]}\n");
}

TEST_F(CliTest, EvalPrintsAnAlignedTableByDefault) {
  const std::string loss = write("spec.loss", kSpecExamples);
  const std::string inputs = write_json("in.json", {{"x", {{2, -1}, {0, 10}}}, {"y", {{1, 0}, {0, 1}}}});
  const CliRun run = run_cli({"eval", loss, "--loss", "ce", "--inputs", inputs, "--grad"});
  ASSERT_EQ(run.status, 0) << run;
  std::istringstream lines(run.out);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_NE(header.find("row"), std::string::npos);
  EXPECT_NE(header.find("loss"), std::string::npos);
  EXPECT_NE(header.find("grad x"), std::string::npos);
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    EXPECT_EQ(line.size(), header.size()) << "columns are aligned:\n" << run.out;
    EXPECT_NE(line.find('['), std::string::npos) << "a real[C] gradient prints as a row";
  }
  EXPECT_EQ(rows, 2);
}

TEST_F(CliTest, EvalParamOverrides) {
  const std::string loss = write("focal.loss", kFocalFile);
  const std::vector<double> x = {-1, 0.5, 2};
  const std::vector<double> y = {1, 0, 1};
  const std::string inputs = write_json("in.json", {{"x", x}, {"y", y}});
  json out = eval_json({loss, "--inputs", inputs, "--dtype", "f64", "--param", "gamma=0", "--param", "alpha=0.75"});
  for (size_t r = 0; r < x.size(); ++r)
    expect_near_relative(out["loss"][r].get<double>(), focal(x[r], y[r], 0.75, 0), 1e-12, "overridden");
  // The last of repeated overrides wins; other params keep their defaults.
  out = eval_json({loss, "--inputs", inputs, "--dtype", "f64", "--param", "gamma=5", "--param", "gamma=1.5"});
  for (size_t r = 0; r < x.size(); ++r)
    expect_near_relative(out["loss"][r].get<double>(), focal(x[r], y[r], 0.25, 1.5), 1e-12, "last wins");
}

TEST_F(CliTest, EvalRejectsBadParams) {
  const std::string loss = write("focal.loss", kFocalFile);
  const std::string inputs = write_json("in.json", {{"x", {0.5}}, {"y", {1}}});
  struct Case {
    std::string param, needle;
  };
  for (const Case& c : {Case{"beta=1", "'beta'"}, Case{"gamma=abc", "gamma"}, Case{"gamma=", "gamma"},
                        Case{"gamma=inf", "gamma"}, Case{"gamma", "NAME=VALUE"}}) {
    const CliRun run = run_cli({"eval", loss, "--inputs", inputs, "--param", c.param});
    EXPECT_EQ(run.status, 2) << c.param << "\n" << run;
    EXPECT_TRUE(is_one_line(run.err)) << run;
    EXPECT_NE(run.err.find(c.needle), std::string::npos) << run;
  }
  // The message for an unknown name lists the params there are.
  const CliRun run = run_cli({"eval", loss, "--inputs", inputs, "--param", "beta=1"});
  EXPECT_NE(run.err.find("alpha, gamma"), std::string::npos) << run;
}

// ---- eval: input errors -----------------------------------------------------------

TEST_F(CliTest, EvalReportsMissingAndUnknownInputs) {
  const std::string loss = write("focal.loss", kFocalFile);
  expect_input_error(loss, R"({"x": [1]})", "missing input 'y'");
  expect_input_error(loss, R"({"x": [1], "y": [0], "z": [2]})", "unknown input 'z'");
  expect_input_error(loss, R"({"x": [1], "y": [0], "x": [2]})", "'x' appears twice");
}

TEST_F(CliTest, EvalReportsEntriesOfTheWrongShape) {
  const std::string focal_loss = write("focal.loss", kFocalFile);
  const std::string spec = write("spec.loss", kSpecExamples);
  expect_input_error(focal_loss, R"({"x": [1, "2"], "y": [0, 1]})", "input 'x' row 1");
  expect_input_error(focal_loss, R"({"x": [1, [2]], "y": [0, 1]})", "expected a number");
  expect_input_error(focal_loss, R"({"x": [1, null], "y": [0, 1]})", "got null");
  expect_input_error(focal_loss, R"({"x": [true], "y": [0]})", "got boolean");
  expect_input_error(focal_loss, R"({"x": 1, "y": [0]})", "input 'x': expected an array");
  expect_input_error(focal_loss, R"({"x": [1, 2], "y": [0, 1, 1]})", "different numbers of rows (2 and 3)");
  expect_input_error(focal_loss, R"({"x": [1e300], "y": [0]})", "out of range for f32");
  expect_input_error(focal_loss, R"({"x": [1e400], "y": [0]})", "number overflow");

  const std::string giou_inputs = R"({"p": [[0, 0, 1, 1]], "g": [[0, 0, 1]]})";
  const std::string inputs = write("in.json", giou_inputs);
  CliRun run = run_cli({"eval", spec, "--loss", "giou", "--inputs", inputs});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_NE(run.err.find("input 'g' row 0: a box needs 4 numbers"), std::string::npos) << run;

  auto ce_error = [&](const std::string& text, const std::string& needle) {
    const std::string path = write("ce.json", text);
    CliRun ce = run_cli({"eval", spec, "--loss", "ce", "--inputs", path});
    EXPECT_EQ(ce.status, 1) << ce;
    EXPECT_TRUE(is_one_line(ce.err)) << ce;
    EXPECT_NE(ce.err.find(needle), std::string::npos) << "expected '" << needle << "' in\n" << ce;
  };
  ce_error(R"({"x": [[1, 2], [1, 2, 3]], "y": [[1, 0], [0, 1]]})", "input 'x' row 1: has 3 values, but row 0 has 2");
  ce_error(R"({"x": [[1, 2]], "y": [[1, 0, 0]]})", "input 'y' row 0: has 3 values, but input 'x' binds C to 2");
  ce_error(R"({"x": [[1, "a"]], "y": [[1, 0]]})", "input 'x' row 0, value 1: expected a number, got string");
  ce_error(R"({"x": [[]], "y": [[]]})", "at least one value");
  ce_error(R"({"x": [1], "y": [[1]]})", "input 'x' row 0: expected an array of numbers");
}

TEST_F(CliTest, EvalReportsMalformedJsonWithItsBytePosition) {
  const std::string loss = write("focal.loss", kFocalFile);
  expect_input_error(loss, R"({"x": [1,], "y": [0]})", "malformed JSON at byte 10");
  expect_input_error(loss, "", "malformed JSON at byte");
  expect_input_error(loss, "[1, 2]", "expected a JSON object");
  expect_input_error(loss, std::string(200000, '['), "nested too deeply");
  expect_input_error(loss, "{\"x\": [1], \"y\": [0]} trailing", "malformed JSON");
  expect_input_error(loss, "{\"x\xff\": [1]}", "malformed JSON");

  const CliRun run = run_cli({"eval", loss, "--inputs", (dir_ / "absent.json").string()});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_NE(run.err.find("absent.json"), std::string::npos) << run;
  const CliRun directory = run_cli({"eval", loss, "--inputs", dir_.string()});
  EXPECT_EQ(directory.status, 1) << directory;
  EXPECT_TRUE(is_one_line(directory.err)) << directory;
}

// ---- eval: choosing the loss ---------------------------------------------------------

TEST_F(CliTest, EvalNeedsLossWhenTheFileHasSeveral) {
  const std::string loss = write("spec.loss", kSpecExamples);
  const std::string inputs = write_json("in.json", {{"x", {0.5}}, {"y", {1}}});
  CliRun run = run_cli({"eval", loss, "--inputs", inputs});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_TRUE(is_one_line(run.err)) << run;
  EXPECT_NE(run.err.find("--loss (focal, ce, giou)"), std::string::npos) << run;

  run = run_cli({"eval", loss, "--loss", "nope", "--inputs", inputs});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_NE(run.err.find("'nope'"), std::string::npos) << run;
  EXPECT_NE(run.err.find("focal, ce, giou"), std::string::npos) << run;

  json out = eval_json({loss, "--loss", "focal", "--inputs", inputs, "--dtype", "f64"});
  expect_near_relative(out["loss"][0].get<double>(), focal(0.5, 1), 1e-12, "focal chosen");
}

TEST_F(CliTest, EvalBareFormulaNeedsAPreset) {
  const std::string inputs = write_json("in.json", {{"X", {0.3, -2}}, {"Q", {0.5, 0}}, {"PY", {1, 0}}, {"NY", {0, 1}}});
  CliRun run = run_cli({"eval", "Neg(Log(Sig(X)))", "--inputs", inputs});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_TRUE(is_one_line(run.err)) << run;
  EXPECT_NE(run.err.find("--pset"), std::string::npos) << run;
  EXPECT_NE(run.err.find("multi_cls, binary_cls, reg"), std::string::npos) << run;

  run = run_cli({"eval", "Neg(Log(Sig(X)))", "--pset", "nope", "--inputs", inputs});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_NE(run.err.find("multi_cls, binary_cls, reg"), std::string::npos) << run;

  json out = eval_json({"Neg(Log(Sig(X)))", "--pset", "binary_cls", "--inputs", inputs, "--grad", "--dtype", "f64"});
  expect_near_relative(out["loss"][0].get<double>(), -plog(sigmoid(0.3)), 1e-12, "formula value");
  expect_near_relative(out["grad"]["X"][1].get<double>(), sigmoid(-2) - 1, 1e-12, "formula gradient");
  EXPECT_EQ(out["grad"].size(), 1u) << "only X is a pred input of binary_cls";

  // A file of losses is not a formula.
  const std::string losses = write("spec.loss", kSpecExamples);
  run = run_cli({"eval", losses, "--pset", "reg", "--inputs", inputs});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_TRUE(is_one_line(run.err)) << run;
  EXPECT_NE(run.err.find("drop --pset"), std::string::npos) << run;

  // Infix works as well; a formula in a file is read with --pset too.
  const std::string formula = write("formula.txt", "-log(sigmoid(X))\n");
  json from_file = eval_json({formula, "--pset", "binary_cls", "--inputs", inputs, "--dtype", "f64"});
  EXPECT_EQ(from_file["loss"], out["loss"]);
}

TEST_F(CliTest, EvalRegPresetTakesBoxes) {
  const std::string inputs = write_json("in.json", {{"P", {{0, 0, 10, 10}}}, {"G", {{1, 1, 9, 12}}}});
  json out = eval_json({"Add(1,Neg(Div(I,U)))", "--pset", "reg", "--inputs", inputs, "--grad", "--dtype", "f64"});
  auto [I, U, E] = box_terms({0, 0, 10, 10}, {1, 1, 9, 12});
  expect_near_relative(out["loss"][0].get<double>(), 1 - pdiv(I, U), 1e-12, "1 - IoU");
  EXPECT_EQ(out["grad"]["P"][0].size(), 4u);
  EXPECT_FALSE(out["grad"].contains("G"));

  const std::string wrong = write_json("wrong.json", {{"U", {1}}, {"I", {1}}, {"E", {1}}});
  const CliRun run = run_cli({"eval", "Add(1,Neg(Div(I,U)))", "--pset", "reg", "--inputs", wrong});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_NE(run.err.find("unknown input"), std::string::npos) << run;
}

// ---- eval: the published CSE-Autoloss losses (SPEC §4) ---------------------------------

TEST_F(CliTest, PublishedCseAutolossClassificationLosses) {
  {
    SCOPED_TRACE("CSE-Autoloss-A cls");
    const std::vector<std::vector<double>> X = {{1.5, -0.3, 0.2, 0}, {-1, 2, 0.5, 0.1}};
    const std::vector<std::vector<double>> Y = {{0, 1, 0, 0}, {0, 0, 0, 1}};
    const std::vector<std::vector<double>> Z = {{0.7, 0.7, 0.7, 0.7}, {1, 1, 1, 1}};
    const std::string inputs = write_json("a.json", {{"X", X}, {"Y", Y}, {"Z", Z}});
    json out = eval_json({kCseACls, "--pset", "multi_cls", "--inputs", inputs, "--grad", "--dtype", "f64"});
    json out32 = eval_json({kCseACls, "--pset", "multi_cls", "--inputs", inputs, "--grad"});
    for (size_t r = 0; r < X.size(); ++r) {
      expect_near_relative(out["loss"][r].get<double>(), cse_a_cls(X[r], Y[r], Z[r]), 1e-12, "value");
      expect_near_relative(out32["loss"][r].get<double>(), cse_a_cls(X[r], Y[r], Z[r]), 1e-5, "f32 value");
      for (size_t c = 0; c < X[r].size(); ++c) {
        auto f = [&](const std::vector<double>& v) { return cse_a_cls(v, Y[r], Z[r]); };
        expect_near_relative(out["grad"]["X"][r][c].get<double>(), numeric_derivative(f, X[r], c), 1e-6, "grad");
      }
    }
  }
  {
    SCOPED_TRACE("CSE-Autoloss-B cls");
    const std::vector<double> X = {-2, -0.2, 0.4, 3}, Q = {0, 0.6, 0.9, 0}, PY = {0, 1, 1, 0};
    std::vector<double> NY;
    for (double py : PY) NY.push_back(1 - py);
    const std::string inputs = write_json("b.json", {{"X", X}, {"Q", Q}, {"PY", PY}, {"NY", NY}});
    json out = eval_json({kCseBCls, "--pset", "binary_cls", "--inputs", inputs, "--grad", "--dtype", "f64"});
    json out32 = eval_json({kCseBCls, "--pset", "binary_cls", "--inputs", inputs, "--grad"});
    for (size_t r = 0; r < X.size(); ++r) {
      const double expected = cse_b_cls(X[r], Q[r], PY[r], NY[r]);
      expect_near_relative(out["loss"][r].get<double>(), expected, 1e-12, "value");
      expect_near_relative(out32["loss"][r].get<double>(), expected, 1e-5, "f32 value");
      auto f = [&](const std::vector<double>& v) { return cse_b_cls(v[0], Q[r], PY[r], NY[r]); };
      expect_near_relative(out["grad"]["X"][r].get<double>(), numeric_derivative(f, {X[r]}, 0), 1e-6, "grad");
    }
  }
}

TEST_F(CliTest, PublishedCseAutolossRegressionLosses) {
  const std::vector<Box> P = {{0, 0, 10, 10}, {2, 3, 7, 9}, {0, 0, 4, 4}};
  const std::vector<Box> G = {{1, 1, 9, 12}, {1, 2, 8, 8}, {6, 6, 9, 8}};
  const std::string inputs = write_json("reg.json", {{"P", P}, {"G", G}});
  struct Case {
    const char* name;
    const char* formula;
    double (*reference)(const Box&, const Box&);
  };
  for (const Case& c : {Case{"CSE-Autoloss-A reg", kCseAReg, cse_a_reg}, Case{"CSE-Autoloss-B reg", kCseBReg, cse_b_reg}}) {
    SCOPED_TRACE(c.name);
    json out = eval_json({c.formula, "--pset", "reg", "--inputs", inputs, "--grad", "--dtype", "f64"});
    json out32 = eval_json({c.formula, "--pset", "reg", "--inputs", inputs, "--grad"});
    for (size_t r = 0; r < P.size(); ++r) {
      expect_near_relative(out["loss"][r].get<double>(), c.reference(P[r], G[r]), 1e-12, "value");
      expect_near_relative(out32["loss"][r].get<double>(), c.reference(P[r], G[r]), 1e-5, "f32 value");
      for (size_t k = 0; k < 4; ++k) {
        auto f = [&](const std::vector<double>& v) { return c.reference({v[0], v[1], v[2], v[3]}, G[r]); };
        const double slope = numeric_derivative(f, {P[r].begin(), P[r].end()}, k);
        expect_near_relative(out["grad"]["P"][r][k].get<double>(), slope, 1e-5, "grad");
      }
    }
  }
}

// ---- eval: non-finite results, back ends, usage --------------------------------------

TEST_F(CliTest, EvalReportsTheFirstNonFiniteRow) {
  const std::string loss = write("sqrt.loss", "loss root(pred x: real) = sqrt(x)\n");
  const std::string inputs = write("in.json", R"({"x": [4, -1, -2]})");
  CliRun run = run_cli({"eval", loss, "--inputs", inputs, "--json"});
  EXPECT_EQ(run.status, 3) << run;
  EXPECT_EQ(run.out, "{\"loss\": [2, null, null]}\n");
  EXPECT_EQ(run.err, "lossforge: loss is NaN at row 1\n");

  const std::string big = write("big.loss", "loss big(pred x: real) = x * 1e30\n");
  const std::string big_inputs = write("big.json", R"({"x": [1, -1e10]})");
  run = run_cli({"eval", big, "--inputs", big_inputs, "--json"});
  EXPECT_EQ(run.status, 3) << run;
  EXPECT_EQ(run.out, "{\"loss\": [1e+30, null]}\n");
  EXPECT_EQ(run.err, "lossforge: loss is -inf at row 1\n");
  run = run_cli({"eval", big, "--inputs", big_inputs, "--json", "--dtype", "f64"});
  EXPECT_EQ(run.status, 0) << run << "finite in f64";

  // A finite loss with a non-finite gradient: d sqrt(x)/dx at 0.
  const std::string zero = write("zero.json", R"({"x": [1, 0]})");
  run = run_cli({"eval", loss, "--inputs", zero, "--grad", "--json"});
  EXPECT_EQ(run.status, 3) << run;
  EXPECT_EQ(run.err, "lossforge: gradient of 'x' is inf at row 1\n");
  EXPECT_NE(run.out.find("null"), std::string::npos) << run;

  // The table shows the value as it is.
  run = run_cli({"eval", loss, "--inputs", inputs});
  EXPECT_EQ(run.status, 3) << run;
  EXPECT_NE(run.out.find("nan"), std::string::npos) << run;
}

TEST_F(CliTest, BackendsNotBuiltAreReportedInOneLine) {
  const std::string loss = write("focal.loss", kFocalFile);
  const std::string inputs = write_json("in.json", {{"x", {0.5}}, {"y", {1}}});
  std::vector<std::string> missing;
#if !LOSSFORGE_HAVE_CUDA
  missing.push_back("cuda");  // with the toolkit, tests/cuda/ covers `eval --backend cuda`
#endif
#if !LOSSFORGE_HAVE_LLVM
  missing.push_back("llvm");  // with LLVM, tests/llvm_test.cpp runs `eval --backend llvm`
#endif
  for (const std::string& backend : missing) {
    const CliRun run = run_cli({"eval", loss, "--inputs", inputs, "--backend", backend});
    EXPECT_EQ(run.status, 1) << run;
    EXPECT_EQ(run.err, "lossforge: backend '" + backend + "' is not built into this lossforge\n");
    EXPECT_EQ(run.out, "");
  }
  CliRun run = run_cli({"eval", loss, "--inputs", inputs, "--backend", "interp", "--json"});
  EXPECT_EQ(run.status, 0) << run;
  run = run_cli({"eval", loss, "--inputs", inputs, "--backend", "tpu"});
  EXPECT_EQ(run.status, 2) << run;
  EXPECT_TRUE(is_one_line(run.err)) << run;
}

TEST_F(CliTest, UsageErrorsExitWithTwo) {
  const std::string loss = write("focal.loss", kFocalFile);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"eval", loss},                                   // no --inputs
           {"eval", "--inputs", "in.json"},                  // no source
           {"eval", loss, "--inputs", "in.json", "--dtype", "f8"},
           {"eval", loss, "--inputs", "in.json", "--bogus"},
           {"fmt", loss, "-i", "--check"},
           {"check"},
       }) {
    const CliRun run = run_cli(args);
    EXPECT_EQ(run.status, 2) << run;
    EXPECT_FALSE(run.err.empty());
    EXPECT_EQ(run.err.rfind("lossforge", 0), 0u) << run;
  }
}

TEST_F(CliTest, HelpAndVersion) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"eval", "--help"}, {"check", "--help"}, {"fmt", "--help"}}) {
    const CliRun run = run_cli(args);
    EXPECT_EQ(run.status, 0) << run;
    EXPECT_NE(run.out.find("Usage"), std::string::npos) << run;
  }
  const CliRun eval_help = run_cli({"eval", "--help"});
  for (const char* word : {"--inputs", "--pset", "--param", "--grad", "--backend", "--dtype", "--json", "IN.json"})
    EXPECT_NE(eval_help.out.find(word), std::string::npos) << word;
  const CliRun version = run_cli({"--version"});
  EXPECT_EQ(version.status, 0) << version;
  EXPECT_NE(version.out.find("lossforge"), std::string::npos);
}

TEST_F(CliTest, MissingFilesAndBadTextAreErrorsNotCrashes) {
  CliRun run = run_cli({"eval", (dir_ / "absent.loss").string(), "--inputs", "in.json"});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_NE(run.err.find("absent.loss"), std::string::npos) << run;

  // Hostile text: deep nesting, a long formula, bytes that are not text.
  const std::string in = write_json("in.json", {{"X", {0.5}}, {"Q", {0}}, {"PY", {1}}, {"NY", {0}}});
  std::string sum = "X";
  for (int i = 0; i < 20000; ++i) sum += "+X";
  for (const std::string& text : {std::string(50000, '(') + "X" + std::string(50000, ')'),
                                  "Neg(" + std::string(50000, '-') + "X)", sum, std::string("\x01\xff\xfe(X"),
                                  std::string("loss f(pred x: real) = x\n")}) {
    run = run_cli({"eval", text, "--pset", "binary_cls", "--inputs", in, "--json"});
    EXPECT_EQ(run.signal, 0) << run;
    EXPECT_FALSE(run.timed_out);
    EXPECT_TRUE(run.status == 0 || run.status == 1) << run;
    if (run.status == 1) {
      EXPECT_FALSE(run.err.empty());
    }
  }
  const std::string garbage = write("garbage.loss", std::string("\0\x01loss\xff{{{", 10));
  run = run_cli({"check", garbage});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.signal, 0);
}

// ---- check --------------------------------------------------------------------------------

TEST_F(CliTest, CheckPrintsOneSummaryLinePerLoss) {
  const std::string file = write("two.loss",
                                 "loss sq(pred x: real, y: real) = (x - y) * (x - y)\n"
                                 "loss focal(pred x: real, y: real) {\n"
                                 "  param alpha = 0.25\n"
                                 "  param gamma = 2\n"
                                 "  let p = sigmoid(x)\n"
                                 "  -alpha * (1 - p)^gamma * log(p) * y\n"
                                 "}\n");
  const CliRun run = run_cli({"check", file});
  ASSERT_EQ(run.status, 0) << run;
  std::istringstream lines(run.out);
  std::string sq, focal_line, extra;
  std::getline(lines, sq);
  std::getline(lines, focal_line);
  EXPECT_FALSE(std::getline(lines, extra)) << run;
  // (x - y) is shared: the DAG has two operators, sub and mul.
  EXPECT_EQ(sq.rfind("sq(pred x: real, y: real)", 0), 0u) << run;
  EXPECT_NE(sq.find("params: none"), std::string::npos) << run;
  EXPECT_NE(sq.find("operators: 2"), std::string::npos) << run;
  EXPECT_NE(sq.find("depth: 3"), std::string::npos) << run;
  EXPECT_EQ(focal_line.rfind("focal(pred x: real, y: real)", 0), 0u) << run;
  EXPECT_NE(focal_line.find("params: alpha = 0.25, gamma = 2"), std::string::npos) << run;
  // The columns after the signatures line up.
  EXPECT_EQ(sq.find("params:"), focal_line.find("params:")) << run;
}

TEST_F(CliTest, CheckFormulasWithPresets) {
  for (const auto& [formula, preset] : std::vector<std::pair<std::string, std::string>>{
           {kCseACls, "multi_cls"}, {kCseAReg, "reg"}, {kCseBCls, "binary_cls"}, {kCseBReg, "reg"}}) {
    const CliRun run = run_cli({"check", formula, "--pset", preset});
    EXPECT_EQ(run.status, 0) << run;
    EXPECT_TRUE(is_one_line(run.out)) << run;
    EXPECT_NE(run.out.find("[" + preset + "]"), std::string::npos) << run;
    EXPECT_NE(run.out.find("pred "), std::string::npos) << run;
  }
  const CliRun reg = run_cli({"check", kCseAReg, "--pset", "reg"});
  EXPECT_NE(reg.out.find("(pred P: box, G: box)"), std::string::npos) << reg;
  const CliRun cls = run_cli({"check", kCseACls, "--pset", "multi_cls"});
  EXPECT_NE(cls.out.find("real["), std::string::npos) << cls;
}

TEST_F(CliTest, CheckPrintsCompileDiagnostics) {
  const std::string file = write("bad.loss", "loss f(pred x: real) {\n  let p = sigmod(x)\n  p\n}\n");
  const CliRun run = run_cli({"check", file});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.err.rfind(file + ":2:", 0), 0u) << run;
  EXPECT_NE(run.err.find(": error: "), std::string::npos) << run;
  EXPECT_NE(run.err.find('^'), std::string::npos) << "a caret under the error:\n" << run;
  EXPECT_EQ(run.out, "");

  const CliRun formula = run_cli({"check", "Neg(Log(Sig(W)))", "--pset", "binary_cls"});
  EXPECT_EQ(formula.status, 1) << formula;
  EXPECT_EQ(formula.err.rfind("<arg>:1:", 0), 0u) << formula;
}

// ---- fmt ----------------------------------------------------------------------------------

constexpr const char* kUnformatted = "# squared error\nloss   sq(pred x:real,y:real)   =   ((x-y))*(x -y)  # twice\n";

TEST_F(CliTest, FmtPrintsCanonicalTextAndIsIdempotent) {
  const std::string file = write("sq.loss", kUnformatted);
  const CliRun first = run_cli({"fmt", file});
  ASSERT_EQ(first.status, 0) << first;
  EXPECT_NE(first.out, kUnformatted);
  EXPECT_NE(first.out.find("# squared error"), std::string::npos) << "comments are kept:\n" << first.out;
  EXPECT_NE(first.out.find("# twice"), std::string::npos) << first.out;
  EXPECT_EQ(read(file), kUnformatted) << "fmt without -i does not touch the file";

  const std::string formatted = write("formatted.loss", first.out);
  const CliRun second = run_cli({"fmt", formatted});
  EXPECT_EQ(second.out, first.out) << "formatting formatted text changes nothing";
  // The formatted text still means the same loss.
  const CliRun check = run_cli({"check", formatted});
  EXPECT_EQ(check.status, 0) << check;
  EXPECT_NE(check.out.find("operators: 2"), std::string::npos) << check;
}

TEST_F(CliTest, FmtInPlaceRewritesAtomicallyOnlyWhenChanged) {
  const std::string file = write("sq.loss", kUnformatted);
  chmod(file.c_str(), 0640);
  const std::string expected = run_cli({"fmt", file}).out;
  struct stat before {};
  stat(file.c_str(), &before);

  CliRun run = run_cli({"fmt", "-i", file});
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(read(file), expected);
  struct stat after {};
  stat(file.c_str(), &after);
  EXPECT_NE(before.st_ino, after.st_ino) << "replaced by rename, not rewritten in place";
  EXPECT_EQ(after.st_mode & 07777, 0640u) << "permissions are kept";
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << entry.path();

  // Already formatted: the file is not replaced at all.
  run = run_cli({"fmt", "-i", file});
  EXPECT_EQ(run.status, 0) << run;
  struct stat again {};
  stat(file.c_str(), &again);
  EXPECT_EQ(again.st_ino, after.st_ino);
  EXPECT_EQ(read(file), expected);
}

TEST_F(CliTest, FmtInPlaceThroughASymlinkReplacesTheTarget) {
  const std::string file = write("sq.loss", kUnformatted);
  const fs::path link = dir_ / "link.loss";
  fs::create_symlink(file, link);
  const CliRun run = run_cli({"fmt", "-i", link.string()});
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_NE(read(file), kUnformatted);
}

TEST_F(CliTest, FmtCheckReportsUnformattedFiles) {
  const std::string file = write("sq.loss", kUnformatted);
  CliRun run = run_cli({"fmt", "--check", file});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(is_one_line(run.err)) << run;
  EXPECT_NE(run.err.find(file), std::string::npos) << run;
  EXPECT_EQ(read(file), kUnformatted);

  ASSERT_EQ(run_cli({"fmt", "-i", file}).status, 0);
  run = run_cli({"fmt", "--check", file});
  EXPECT_EQ(run.status, 0) << run;
  EXPECT_EQ(run.out + run.err, "");
}

TEST_F(CliTest, FmtLeavesFilesThatDoNotParseAlone) {
  const std::string text = "loss f(pred x: real) = x +\n";
  const std::string file = write("bad.loss", text);
  const CliRun run = run_cli({"fmt", "-i", file});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.err.rfind(file + ":", 0), 0u) << run;
  EXPECT_NE(run.err.find(": error: "), std::string::npos) << run;
  EXPECT_EQ(read(file), text);

  const CliRun missing = run_cli({"fmt", (dir_ / "absent.loss").string()});
  EXPECT_EQ(missing.status, 1) << missing;
  EXPECT_TRUE(is_one_line(missing.err)) << missing;
  const CliRun directory = run_cli({"fmt", dir_.string()});
  EXPECT_EQ(directory.status, 1) << directory;
  EXPECT_TRUE(is_one_line(directory.err)) << directory;
}

TEST_F(CliTest, FmtReadsStandardInput) {
  const std::string file = write("sq.loss", kUnformatted);
  const CliRun from_file = run_cli({"fmt", file});
  const CliRun from_stdin = run_cli({"fmt", "-"}, kUnformatted);
  EXPECT_EQ(from_stdin.status, 0) << from_stdin;
  EXPECT_EQ(from_stdin.out, from_file.out);
  const CliRun in_place = run_cli({"fmt", "-i", "-"}, kUnformatted);
  EXPECT_EQ(in_place.status, 2) << in_place;
}

// ---- the example losses ------------------------------------------------------------------

TEST_F(CliTest, ExampleLossesCheckAndFormatWithoutChangingMeaning) {
  const fs::path examples = fs::path(LOSSFORGE_SOURCE_DIR) / "examples" / "losses";
  size_t checked = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".loss") continue;
    SCOPED_TRACE(entry.path().string());
    const CliRun check = run_cli({"check", entry.path().string()});
    EXPECT_EQ(check.status, 0) << check;
    EXPECT_FALSE(check.out.empty());
    // Formatting is idempotent and keeps every loss as it was (same signatures, sizes, depths).
    const CliRun fmt = run_cli({"fmt", entry.path().string()});
    ASSERT_EQ(fmt.status, 0) << fmt;
    const std::string formatted = write(entry.path().filename().string(), fmt.out);
    EXPECT_EQ(run_cli({"fmt", "--check", formatted}).status, 0) << fmt.out;
    EXPECT_EQ(run_cli({"check", formatted}).out, check.out);
    ++checked;
  }
  EXPECT_GT(checked, 0u) << "examples/losses holds no .loss file";
}

// ---- bench ------------------------------------------------------------------

// `bench --json` on one batch: every back end of this build, each row's numbers
// consistent with the batch (ns per row from ms per call, the bytes moved per
// row from GB/s), the interpreter the unit of the speed-ups.
TEST_F(CliTest, BenchTimesEveryBackendOnOneBatch) {
  const std::string loss = write("focal.loss", kFocalFile);
  for (const std::string dtype : {"f32", "f64"}) {
    const CliRun run = run_cli({"bench", loss, "--rows", "3000", "--min-time", "0.01", "--threads", "1", "--threads",
                                "3", "--dtype", dtype, "--json"});
    ASSERT_EQ(run.status, 0) << run;
    const json out = json::parse(run.out);
    EXPECT_EQ(out["loss"], "focal");
    EXPECT_EQ(out["rows"], 3000);
    EXPECT_EQ(out["gradients"], true);
    std::vector<std::string> timed;
    for (const json& r : out["results"]) {
      const std::string backend = r["backend"];
      timed.push_back(backend + (r["threads"].is_null() ? "" : "/" + std::to_string(int(r["threads"]))));
      const double ms = r["ms_per_call"];
      EXPECT_GT(ms, 0) << r;
      EXPECT_NEAR(double(r["ns_per_row"]), ms * 1e6 / 3000, 1e-9 * ms * 1e6) << r;
      // x and y read, x's gradient and the loss written: 4 values per row.
      const double bytes_per_row = double(r["gb_per_s"]) * 1e9 * ms * 1e-3 / 3000;
      EXPECT_NEAR(bytes_per_row, dtype == "f32" ? 16 : 32, 1e-6) << r;
      if (backend == "interp") {
        EXPECT_TRUE(r["compile_ms"].is_null());
        EXPECT_DOUBLE_EQ(double(r["vs_interp"]), 1.0);
      } else {
        EXPECT_GT(double(r["compile_ms"]), 0) << r;
        EXPECT_GT(double(r["cache_hit_ms"]), 0) << r;
        EXPECT_GT(double(r["vs_interp"]), 0) << r;
      }
    }
    std::vector<std::string> expected = {"interp"};
#if LOSSFORGE_HAVE_LLVM
    expected.insert(expected.end(), {"llvm/1", "llvm/3"});
#endif
    std::vector<std::string> skipped;
    for (const json& s : out["skipped"]) {
      skipped.push_back(s["backend"]);
      EXPECT_TRUE(is_one_line(std::string(s["reason"]) + "\n")) << s;
    }
    if (std::find(skipped.begin(), skipped.end(), "cuda") == skipped.end()) expected.push_back("cuda");
    EXPECT_EQ(timed, expected) << run.out;
#if !LOSSFORGE_HAVE_LLVM
    EXPECT_NE(std::find(skipped.begin(), skipped.end(), "llvm"), skipped.end()) << run.out;
#endif
  }
}

// Rows of C values and box pairs; the table a person reads.
TEST_F(CliTest, BenchRowAndBoxLossesPrintATable) {
  const fs::path examples = fs::path(LOSSFORGE_SOURCE_DIR) / "examples" / "losses";
  CliRun run = run_cli({"bench", (examples / "cross_entropy.loss").string(), "--rows", "500", "--width", "7",
                        "--min-time", "0", "--backend", "interp", "--json"});
  ASSERT_EQ(run.status, 0) << run;
  json out = json::parse(run.out);
  EXPECT_EQ(out["width"], 7);
  ASSERT_EQ(out["results"].size(), 1u);
  // x read, y read, x's gradient written (7 floats each), one loss.
  const json& r = out["results"][0];
  EXPECT_NEAR(double(r["gb_per_s"]) * 1e9 * double(r["ms_per_call"]) * 1e-3 / 500, 3 * 7 * 4 + 4, 1e-6) << r;

  run = run_cli({"bench", (examples / "giou.loss").string(), "--rows", "500", "--min-time", "0", "--forward-only"});
  ASSERT_EQ(run.status, 0) << run;
  EXPECT_EQ(run.out.rfind("giou: loss, 500 rows, f32\n", 0), 0u) << run;
  for (const char* column : {"backend", "threads", "compile ms", "cache hit ms", "ms/call", "ns/row", "GB/s", "vs interp"})
    EXPECT_NE(run.out.find(column), std::string::npos) << column << "\n" << run;
  EXPECT_NE(run.out.find("\n interp "), std::string::npos) << run;
}

// Bad requests are one-line errors: a back end that is not there, 16-bit
// arrays on a CPU back end, an empty batch; a formula that does not parse
// gets its diagnostic.
TEST_F(CliTest, BenchErrors) {
  const std::string loss = write("focal.loss", kFocalFile);
  CliRun run = run_cli({"bench", loss, "--rows", "100", "--min-time", "0", "--backend", "cuda", "--json"});
#if LOSSFORGE_HAVE_CUDA
  if (run.status == 0) {  // a machine with a GPU: the CUDA row is there
    const json out = json::parse(run.out);
    ASSERT_EQ(out["results"].size(), 1u);
    EXPECT_EQ(out["results"][0]["backend"], "cuda");
    EXPECT_GT(double(out["results"][0]["ms_per_call"]), 0);
  } else {
    EXPECT_EQ(run.status, 1) << run;
    EXPECT_EQ(run.err.rfind("lossforge: no CUDA device: ", 0), 0u) << run;
    EXPECT_TRUE(is_one_line(run.err)) << run;
    // 16-bit arrays are the CUDA kernels' alone: nothing else to time.
    run = run_cli({"bench", loss, "--rows", "100", "--dtype", "bf16"});
    EXPECT_EQ(run.status, 1) << run;
    EXPECT_EQ(run.err.rfind("lossforge: --dtype bf16 runs on the cuda backend only, and no CUDA device: ", 0), 0u)
        << run;
  }
#else
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.err, "lossforge: backend 'cuda' is not built into this lossforge\n");
#endif
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"bench", loss, "--rows", "0"},
           {"bench", loss, "--backend", "tpu"},
           {"bench", loss, "--dtype", "bf16", "--backend", "interp"},
           {"bench", loss, "--threads", "0"},
       }) {
    run = run_cli(args);
    EXPECT_NE(run.status, 0) << run;
    EXPECT_TRUE(is_one_line(run.err)) << run;
    EXPECT_EQ(run.out, "") << run;
  }
  EXPECT_EQ(run_cli({"bench", loss, "--dtype", "bf16", "--backend", "interp"}).status, 2);
  run = run_cli({"bench", "Sig(X", "--pset", "binary_cls"});
  EXPECT_EQ(run.status, 1) << run;
  EXPECT_EQ(run.err.rfind("<arg>:1:6: error: unexpected end of input", 0), 0u) << run;
}

}  // namespace
