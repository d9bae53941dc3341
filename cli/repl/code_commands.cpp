// :grad, :simplify and :emit: a loss as other text.
#include <ostream>

#include "cli/repl/commands.hpp"
#include "compiler/autodiff.hpp"
#include "compiler/codegen_cpp.hpp"
#include "compiler/codegen_cuda.hpp"
#include "compiler/kernel.hpp"
#include "compiler/print.hpp"
#include "compiler/simplify.hpp"
#if LOSSFORGE_HAVE_LLVM
#include "compiler/codegen_llvm.hpp"
#endif

namespace lossforge::repl {
namespace {

void expect_no_more(const Words& words, size_t used, const char* usage) {
  if (words.size() > used) throw InputError(std::string("usage: ") + usage);
}

// Names a formula's printers use: the preset's (X, U, I, E), none for DSL losses.
NameMap printing_names(const Definition& d) {
  if (!d.formula) return {};
  const Preset* preset = find_preset(d.loss.preset);
  return preset ? terminal_names(*preset) : NameMap{};
}

}  // namespace

void command_grad(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  expect_no_more(words, used, ":grad [LOSS]");
  const Loss& loss = d.loss;
  const Gradients gradients = differentiate(loss);
  std::ostream& out = session.out();
  if (d.formula) {
    // A formula's derivative reads best as a formula in the preset's names.
    const NameMap names = printing_names(d);
    for (const InputGradient& g : gradients.inputs) {
      const LossInput& input = loss.inputs[g.input];
      for (size_t part = 0; part < g.parts.size(); ++part) {
        std::string by = input.name;
        if (input.type.is_box()) by += "." + std::string(box_field_name(int(part)));
        out << "d" << loss.name << "/d" << by << " = " << to_infix(g.parts[part], names) << '\n';
      }
    }
    return;
  }
  const std::vector<Loss> parts = gradient_losses(loss, gradients);
  for (size_t i = 0; i < parts.size(); ++i) out << (i ? "\n" : "") << to_text(parts[i]);
}

void command_simplify(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  expect_no_more(words, used, ":simplify [LOSS]");
  const Loss simplified = simplify(d.loss);
  if (d.formula)
    session.out() << d.loss.name << " = " << to_infix(simplified.body, printing_names(d)) << '\n';
  else
    session.out() << to_text(simplified);
  session.out() << "DAG nodes " << dag_size(d.loss.body) << " -> " << dag_size(simplified.body) << ", tree size "
                << d.loss.body->tree_size() << " -> " << simplified.body->tree_size() << '\n';
}

void command_emit(Session& session, const Words& words) {
  bool used = false;
  const Definition& d = loss_argument(session, words, used);
  const size_t first = used ? 1 : 0;
  if (words.size() != first + 1 || (words[first] != "llvm" && words[first] != "cuda" && words[first] != "cpp"))
    throw InputError("usage: :emit [LOSS] llvm|cuda|cpp");
  const std::string& target = words[first];
  const Kernel kernel = user_kernel(d.loss, /*gradients=*/true);  // as the engines compile it (eval --backend llvm)
  if (target == "cuda") {
    session.out() << emit_cuda(kernel);
  } else if (target == "cpp") {
    session.out() << emit_cpp(kernel);
  } else {
#if LOSSFORGE_HAVE_LLVM
    session.out() << llvm_codegen::emit_ir(kernel, DType::F32, false);
#else
    throw UnavailableError("target 'llvm' is not built into this lossforge (it was built without LLVM 16)");
#endif
  }
}

}  // namespace lossforge::repl
