// Embedding lossforge: compile a loss file, evaluate loss and gradient on plain
// arrays, and minimise the loss over the logits by gradient descent.
//
//   embed_example [focal.loss]
#include <lossforge/lossforge.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace lf = lossforge::api;

namespace {

const char* backend_name(lf::Backend backend) {
  switch (backend) {
    case lf::Backend::Llvm:
      return "llvm";
    case lf::Backend::Interpreter:
      return "interpreter";
    case lf::Backend::Auto:
      break;
  }
  return "auto";
}

// Prints a failure the way a tool would: its kind and its first line.
void print_failure(const char* what, const lf::Failure& failure) {
  const std::string first_line = failure.message.substr(0, failure.message.find('\n'));
  std::printf("%s: error (%s): %s\n", what, std::string(lf::to_string(failure.kind)).c_str(), first_line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "examples/losses/focal.loss";

  lf::Result<lf::Kernel> compiled = lf::compile_file(path);
  if (!compiled) {
    print_failure(path.c_str(), compiled.error());
    return 1;
  }
  const lf::Kernel& kernel = *compiled;
  std::printf("lossforge %s: compiled %s (backend: %s)\n", std::string(lf::version()).c_str(),
              kernel.name().c_str(), backend_name(kernel.backend()));
  for (const lf::InputInfo& input : kernel.inputs()) {
    std::printf("  input %s%s\n", input.name.c_str(), input.pred ? " (pred)" : "");
  }
  for (const lf::ParamInfo& param : kernel.params()) {
    std::printf("  param %s = %g\n", param.name.c_str(), param.default_value);
  }
  if (kernel.inputs().size() != 2) {
    std::printf("this example expects a loss of (pred logit, target), like focal.loss\n");
    return 1;
  }

  // Four predictions: two confidently wrong, two mildly right.
  std::vector<float> logits = {-2.0f, 3.0f, 0.5f, -0.5f};
  const std::vector<float> targets = {1.0f, 0.0f, 1.0f, 0.0f};

  lf::Result<lf::Output<float>> rows = kernel.run({{logits}, {targets}});
  if (!rows) {
    print_failure("run", rows.error());
    return 1;
  }
  std::printf("%8s %8s %12s %12s\n", "logit", "target", "loss", "d loss/d x");
  for (size_t r = 0; r < logits.size(); ++r) {
    std::printf("%8.3f %8.0f %12.6f %12.6f\n", logits[r], targets[r], rows->loss[r], rows->gradients[0][r]);
  }

  // Gradient descent on the mean loss.
  lf::RunOptions<float> mean;
  mean.reduction = lf::Reduction::Mean;
  const float learning_rate = 20.0f;
  float first = 0, last = 0;
  for (int step = 0; step <= 100; ++step) {
    lf::Result<lf::Output<float>> out = kernel.run({{logits}, {targets}}, mean);
    if (!out) {
      print_failure("run", out.error());
      return 1;
    }
    last = out->loss[0];
    if (step == 0) first = last;
    if (step % 25 == 0) std::printf("step %3d: mean loss %.6f\n", step, last);
    for (size_t r = 0; r < logits.size(); ++r) logits[r] -= learning_rate * out->gradients[0][r];
  }
  std::printf("mean loss fell from %.6f to %.6f\n", first, last);

  // Errors are values: a misspelt function is reported, nothing is thrown.
  lf::Result<lf::Kernel> broken = lf::compile("loss broken(pred x: real) = sigmod(x)", {});
  if (broken) return 1;
  print_failure("broken", broken.error());

  lf::Result<lf::Output<float>> short_input = kernel.run({{logits}, {std::span(targets).first(2)}});
  if (short_input) return 1;
  print_failure("short input", short_input.error());

  return last < first ? 0 : 1;
}
