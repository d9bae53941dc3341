// The JSON side of `eval`: IN.json in, {"loss": ..., "grad": ...} out.
//
// IN.json maps each input name of the loss to an array with one entry per row:
//   {"x": [0.3, -1.2], "y": [1, 0]}                      real
//   {"x": [[2, -1, 0.5], [0, 0, 3]], ...}                real[C]: C numbers a row
//   {"P": [[0, 0, 10, 10]], "G": [[1, 1, 9, 12]]}         box: [x1, y1, x2, y2]
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "compiler/loss.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/tensor.hpp"

namespace lossforge::cli {

// One Array per Loss::inputs entry, in that order. Throws InputError naming
// `file_name` and the input (or the byte offset of malformed JSON) for missing
// or unknown inputs, entries of the wrong shape or type, rows that disagree in
// count or width, and numbers T cannot hold.
template <class T>
std::vector<Array<T>> parse_inputs_json(std::string_view json_text, const std::string& file_name, const Loss& loss);

// The same for a file; "-" reads standard input.
template <class T>
std::vector<Array<T>> read_inputs_json(const std::string& path, const Loss& loss);

// {"loss": [one number per row], "grad": {"<pred input>": [shaped like the input]}}
// on one line, numbers in shortest round-trip form for T and null where not
// finite. "grad" appears only when `with_grads`.
template <class T>
std::string evaluation_json(const Loss& loss, const Evaluation<T>& evaluation, bool with_grads);

}  // namespace lossforge::cli
