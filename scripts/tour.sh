#!/usr/bin/env bash
# A tour of the language and the compiler: builds lossforge (setup.sh), then checks every example loss,
# evaluates each with gradients on a few generated rows, runs the published
# CSE-Autoloss formulas with their presets, and formats a messy file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

lossforge=${LOSSFORGE_BUILD_DIR:-build}/cli/lossforge
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Runs a command, echoing it first; a failing demo step is shown, not fatal.
show() {
  printf '$'; printf ' %q' "$@"; printf '\n'
  "$@" || echo "(exit status $?)"
}

# Writes IN.json for a loss signature such as "focal(pred x: real, y: real)":
# logits for pred reals and rows, labels in [0, 1] or one-hot rows for the
# others, and predicted boxes jittered around their targets.
make_inputs() {
  python3 - "$1" "$2" <<'PY'
import json, random, re, sys
signature, path = sys.argv[1], sys.argv[2]
random.seed(signature)
rows, classes = 3, 4
inputs = {}
target_boxes = [[x, y, x + random.uniform(2, 6), y + random.uniform(2, 6)]
                for x, y in ((random.uniform(0, 4), random.uniform(0, 4)) for _ in range(rows))]
for decl in re.match(r"\w+\((.*)\)", signature).group(1).split(","):
    pred = decl.split()[0] == "pred"
    name, kind = (part.strip() for part in decl.replace("pred ", "").split(":"))
    if kind == "box":
        jitter = (lambda: random.uniform(-0.8, 0.8)) if pred else (lambda: 0.0)
        column = [[round(v + jitter(), 3) for v in box] for box in target_boxes]
    elif kind.startswith("real["):
        width = kind[5:-1]
        width = int(width) if width.isdigit() else classes
        if pred:
            column = [[round(random.gauss(0, 1.5), 3) for _ in range(width)] for _ in range(rows)]
        else:
            column = [[1 if c == random.randrange(width) else 0 for c in range(width)] for _ in range(rows)]
    else:
        column = [round(random.uniform(-3, 3), 3) if pred else random.choice([0, 1, round(random.random(), 2)])
                  for _ in range(rows)]
    inputs[name] = column
json.dump(inputs, open(path, "w"))
PY
}

section "lossforge check: every example loss (signature, params, operators, depth)"
for file in examples/losses/*.loss; do
  show "$lossforge" check "$file"
done

section "lossforge eval --grad: each example loss on three generated rows"
for file in examples/losses/*.loss; do
  "$lossforge" check "$file" | while read -r line; do
    signature=${line%%  *}  # check's columns are two spaces apart
    name=${signature%%(*}
    make_inputs "$signature" "$work/in.json"
    printf '\n%s from %s, inputs %s\n' "$name" "$file" "$(cat "$work/in.json")"
    "$lossforge" eval "$file" --loss "$name" --inputs "$work/in.json" --grad </dev/null || echo "(exit status $?)"
  done
done

section "The published CSE-Autoloss losses, as DEAP strings with signature presets"
cse_a_reg='Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))'
cse_b_cls='Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),Neg(Add(1,Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))'
cat >"$work/boxes.json" <<'JSON'
{"P": [[0, 0, 10, 10], [2, 3, 7, 9]], "G": [[1, 1, 9, 12], [1, 2, 8, 8]]}
JSON
cat >"$work/binary.json" <<'JSON'
{"X": [2.5, -1, 0.3], "Q": [0.8, 0, 0], "PY": [1, 0, 0], "NY": [0, 1, 1]}
JSON
show "$lossforge" check "$cse_a_reg" --pset reg
show "$lossforge" eval "$cse_a_reg" --pset reg --inputs "$work/boxes.json" --grad --json
show "$lossforge" check "$cse_b_cls" --pset binary_cls
show "$lossforge" eval "$cse_b_cls" --pset binary_cls --inputs "$work/binary.json" --grad --dtype f64

section "lossforge fmt: canonical text, comments kept"
cat >"$work/messy.loss" <<'LOSS'
# smooth focal-ish loss, written in a hurry
loss   mine( pred x:real , y:real ){
  param  gamma=2
  let p=sigmoid(x)   # probability
  -((1-p)^gamma)*y*log(p)-(p^gamma)*(1-y)*log((1-p))
}
LOSS
show "$lossforge" fmt "$work/messy.loss"

section "The compiler: simplify, differentiate symbolically, JIT through LLVM"
show "$lossforge" simplify "$cse_b_cls" --pset binary_cls
show "$lossforge" grad 'Neg(Log(Sig(X)))' --pset binary_cls
if "$lossforge" emit --target llvm examples/losses/giou.loss >/dev/null 2>&1; then
  show "$lossforge" eval "$cse_b_cls" --pset binary_cls --inputs "$work/binary.json" --grad --dtype f64 --backend llvm
else
  echo "(this lossforge was built without LLVM 16: the JIT back end is not there)"
fi

section "Errors point at the text"
show "$lossforge" check 'Neg(Log(Sigmod(X)))' --pset binary_cls
