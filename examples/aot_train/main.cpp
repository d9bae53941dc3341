// Logistic regression on synthetic, imbalanced two-class data, trained by
// gradient descent on the focal loss compiled ahead of time (focal.loss ->
// focal.hpp / focal.cpp by lossforge_add_losses). One call of the generated
// host loop computes the mean loss and its gradient by every logit; the chain
// rule to the weights is ordinary C++.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "focal.hpp"

namespace focal = lossforge_aot::focal;

int main() {
  constexpr int kFeatures = 8, kSamples = 4096, kSteps = 200;
  constexpr double kLearningRate = 2.0;
  static_assert(focal::kInputs == 2 && focal::kParams == 2);

  // Data: x ~ N(0, 1)^8, label 1 when a fixed direction's score is high (about 20%).
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> features(kSamples * kFeatures), labels(kSamples);
  std::vector<float> truth(kFeatures);
  for (float& t : truth) t = normal(rng);
  for (int i = 0; i < kSamples; ++i) {
    float score = 0;
    for (int f = 0; f < kFeatures; ++f) score += (features[i * kFeatures + f] = normal(rng)) * truth[f];
    labels[i] = score + 0.3f * normal(rng) > 2.0f ? 1.0f : 0.0f;
  }

  std::vector<float> weights(kFeatures, 0.0f), logits(kSamples), losses(kSamples), dlogits(kSamples);
  float bias = 0;
  LossforgeLaunch args{};
  args.inputs[0] = logits.data();  // x (pred)
  args.inputs[1] = labels.data();  // y
  args.widths[0] = args.widths[1] = 1;
  args.loss = losses.data();
  args.grads[0] = dlogits.data();  // d mean loss / d x
  args.rows = kSamples;
  for (int p = 0; p < focal::kParams; ++p) args.params[p] = focal::kParamDefaults[p];
  args.loss_scale = args.grad_scale = 1.0 / kSamples;  // mean

  double first = 0, last = 0;
  for (int step = 0; step < kSteps; ++step) {
    for (int i = 0; i < kSamples; ++i) {
      float z = bias;
      for (int f = 0; f < kFeatures; ++f) z += weights[f] * features[i * kFeatures + f];
      logits[i] = z;
    }
    const double mean = focal::run(args);  // loss and gradient in one pass
    if (step == 0) first = mean;
    last = mean;
    std::vector<double> dw(kFeatures, 0.0);
    double db = 0;
    for (int i = 0; i < kSamples; ++i) {
      for (int f = 0; f < kFeatures; ++f) dw[f] += dlogits[i] * features[i * kFeatures + f];
      db += dlogits[i];
    }
    for (int f = 0; f < kFeatures; ++f) weights[f] -= float(kLearningRate * dw[f]);
    bias -= float(kLearningRate * db);
  }
  int correct = 0;
  for (int i = 0; i < kSamples; ++i) correct += (logits[i] > 0) == (labels[i] > 0.5f);
  std::printf("focal loss (ahead of time, %d inputs, params alpha=%g gamma=%g)\n", focal::kInputs,
              focal::kParamDefaults[0], focal::kParamDefaults[1]);
  std::printf("mean loss fell from %.6f to %.6f in %d steps; accuracy %.3f\n", first, last, kSteps,
              double(correct) / kSamples);
  return last < 0.5 * first && std::isfinite(last) ? 0 : 1;
}
