// `lossforge fmt` keeps the author's names and comments and is idempotent.
#include <gtest/gtest.h>

#include "compiler/format.hpp"
#include "compiler/frontend.hpp"

namespace lossforge {
namespace {

std::string fmt(const std::string& text) { return format_source(SourceFile::from_text("t.loss", text)); }

TEST(Format, CanonicalLayoutKeepsCommentsNamesAndParagraphs) {
  std::string messy = R"(# Focal loss (Lin et al. 2017).
loss   focal( pred x:real,y : real ){   # per element
  param alpha=.25 # weight of positives
  param gamma = 2.0
  # probabilities
  let p=sigmoid( x )
  let pt = ((p*y)) + (1-p)*(1-y)

  let at = alpha*y+(1-alpha)*(1-y)
  -at*(1-pt)^gamma*log(pt)   # the loss
  # closing remark
}
# between losses
loss ce(pred x: real[C], y: real[C]) = - dot(y,log(softmax(x)))  # one line
# at the end
)";
  std::string expected = R"(# Focal loss (Lin et al. 2017).
loss focal(pred x: real, y: real) {  # per element
  param alpha = 0.25  # weight of positives
  param gamma = 2
  # probabilities
  let p = sigmoid(x)
  let pt = p * y + (1 - p) * (1 - y)

  let at = alpha * y + (1 - alpha) * (1 - y)
  -at * (1 - pt)^gamma * log(pt)  # the loss
  # closing remark
}

# between losses
loss ce(pred x: real[C], y: real[C]) = -dot(y, log(softmax(x)))  # one line

# at the end
)";
  EXPECT_EQ(fmt(messy), expected);
  EXPECT_EQ(fmt(expected), expected);
}

TEST(Format, EarlierLetsAreUsedByName) {
  EXPECT_EQ(fmt("loss f(pred x: real) {\n let s = sigmoid(x)\n sigmoid(x) * (1 - sigmoid(x))\n}\n"),
            "loss f(pred x: real) {\n  let s = sigmoid(x)\n  s * (1 - s)\n}\n");
}

TEST(Format, MeaningIsUnchanged) {
  const std::string text = "loss f(pred x: real, y: real) = x - (y - 2) / -3 ^ 2 + -x^-2 + 0x10 * 1e-07";
  Module before = load_module(SourceFile::from_text("a", text));
  Module after = load_module(SourceFile::from_text("b", fmt(text)));
  EXPECT_EQ(before.losses[0].body, after.losses[0].body);
  EXPECT_EQ(fmt(text), "loss f(pred x: real, y: real) = x - (y - 2) / -3^2 + -x^-2 + 16 * 1e-7\n");
}

TEST(Format, RefusesTextThatDoesNotCheck) {
  EXPECT_THROW(fmt("loss f(pred x: real) = nope(x)"), CompileError);
}

}  // namespace
}  // namespace lossforge
