#!/usr/bin/python3
"""Independent reference for lossforge: the published losses and baselines in PyTorch.

For each loss, random inputs of the kind a detector produces are written to a
JSON file, `lossforge eval ... --json --grad --dtype f64|f32` evaluates them,
and the same formula, written here independently in torch (float64, autograd
for the gradients), must agree:

  * the CSE-Autoloss losses through a small torch interpreter of DEAP prefix
    strings (below), compared with both the published string (`--pset`) and the
    readable form in examples/losses;
  * the baselines written as a PyTorch user writes them (F.log_softmax,
    F.binary_cross_entropy_with_logits, F.smooth_l1_loss, torchvision-style box
    code), compared with the example files.

Semantics are SPEC §3: log(a) = ln(a + 1e-20), a / b = a / (b + 1e-20),
exp(a) = exp(min(a, 88)), the scaled S-curves serf, salf, sgdf, and the reg
preset's I, U = area(P) + area(G) - I + 1e-7, E = enclosing area + 1e-7.

float64 must agree to 1e-9 relative; float32 is compared with the float64
reference on the same (float32-representable) inputs, at torch.testing's
float32 tolerance (rtol 1.3e-6, atol 1e-5 in units of the array's largest
reference value). Values are judged relative to their own size, gradient
components relative to the largest component of their row, so a component that
is 0 up to rounding next to large ones does not count as a mismatch. One case,
confident logits in CSE-Autoloss-B cls, is compared in float32 with torch's own
float32 evaluation: there the formula's float32 value is lost for any
implementation (log of a 1 - sigmoid(X) that rounds to 0).

Random boxes keep distinct coordinate ends along each axis (except exactly
touching boxes, where both conventions agree): at a tie of min/max PyTorch
splits the gradient between the arguments while lossforge deliberately gives it
to the first (compiler/semantics.hpp), so exact ties are left out.

Usage: torch_reference.py --cli path/to/lossforge [--examples DIR] [--rows N] [--seed S]
Prints one line per case and "N passed, N failed"; exits 1 on any failure.
"""
import argparse
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

# ---- SPEC §3 operators ----------------------------------------------------------

DIV_EPS = 1e-20
LOG_EPS = 1e-20
EXP_MAX = 88.0
BOX_EPS = 1e-7


def pdiv(a, b):
    return a / (b + DIV_EPS)


def plog(a):
    return torch.log(a + LOG_EPS)


def pexp(a):
    return torch.exp(torch.clamp(a, max=EXP_MAX))


def serf(a):
    return (torch.erf(math.sqrt(math.pi) / 2 * a / 2) + 1) / 2


def salf(a):
    h = a / 2
    return (h / torch.sqrt(1 + h * h) + 1) / 2


def sgdf(a):
    return ((2 / math.pi) * 2 * torch.atan(torch.tanh(math.pi * a / 8)) + 1) / 2


def area(b):
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def inter(p, g):
    w = (torch.minimum(p[..., 2], g[..., 2]) - torch.maximum(p[..., 0], g[..., 0])).clamp(min=0)
    h = (torch.minimum(p[..., 3], g[..., 3]) - torch.maximum(p[..., 1], g[..., 1])).clamp(min=0)
    return w * h


def enclose(p, g):
    w = (torch.maximum(p[..., 2], g[..., 2]) - torch.minimum(p[..., 0], g[..., 0])).clamp(min=0)
    h = (torch.maximum(p[..., 3], g[..., 3]) - torch.minimum(p[..., 1], g[..., 1])).clamp(min=0)
    return w * h


def reg_terms(p, g):
    """The reg preset's I, U, E (SPEC §2)."""
    i = inter(p, g)
    return i, area(p) + area(g) - i + BOX_EPS, enclose(p, g) + BOX_EPS


# ---- a torch interpreter of DEAP prefix strings ------------------------------------
# Every value is 2-D: a `real` is [rows, 1], a `real[C]` row is [rows, C], so
# broadcasting between them is torch's own; Dot keeps the reduced dimension.

DEAP_OPS = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": pdiv,
    "Neg": lambda a: -a,
    "Log": plog,
    "Exp": pexp,
    "Sqrt": torch.sqrt,
    "Abs": torch.abs,
    "Sin": torch.sin,
    "Cos": torch.cos,
    "Tanh": torch.tanh,
    "Relu": torch.relu,
    "Softplus": F.softplus,
    "Sig": torch.sigmoid,
    "Serf": serf,
    "Salf": salf,
    "Sgdf": sgdf,
    "Erfc": torch.erfc,
    "Softmax": lambda a: torch.softmax(a, dim=-1),
    "Dot": lambda a, b: (a * b).sum(dim=-1, keepdim=True),
}

TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z_0-9]*)|([0-9.]+(?:[eE][+-]?[0-9]+)?)|(.))")


def parse_deap(text):
    """Prefix string -> nested tuples: ('call', name, [args]) | ('name', n) | ('num', v)."""
    tokens = [m.groups() for m in TOKEN.finditer(text) if any(m.groups())]
    pos = 0

    def node():
        nonlocal pos
        name, number, sym = tokens[pos]
        pos += 1
        if number is not None:
            return ("num", float(number))
        if name is None:
            raise ValueError(f"unexpected {sym!r} in {text}")
        if pos < len(tokens) and tokens[pos][2] == "(":
            pos += 1
            args = [node()]
            while tokens[pos][2] == ",":
                pos += 1
                args.append(node())
            if tokens[pos][2] != ")":
                raise ValueError(f"expected ')' in {text}")
            pos += 1
            return ("call", name, args)
        return ("name", name)

    tree = node()
    if pos != len(tokens):
        raise ValueError(f"trailing text in {text}")
    return tree


def eval_deap(tree, env):
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "name":
        return env[tree[1]]
    return DEAP_OPS[tree[1]](*(eval_deap(a, env) for a in tree[2]))


def deap_loss(text, preset):
    """A reference loss function over the preset's inputs from a DEAP string."""
    tree = parse_deap(text)

    def loss(t):
        if preset == "reg":
            i, u, e = reg_terms(t["P"], t["G"])
            env = {"I": i[:, None], "U": u[:, None], "E": e[:, None]}
        else:
            env = {k: (v if v.dim() == 2 else v[:, None]) for k, v in t.items()}
        value = eval_deap(tree, env)
        return torch.as_tensor(value).expand(len(next(iter(t.values()))), 1)[:, 0]

    return loss


# ---- the baselines, as a PyTorch user writes them -------------------------------


def cross_entropy(t):
    return -(t["y"] * F.log_softmax(t["x"], dim=-1)).sum(-1)


def sigmoid_focal(alpha, gamma):
    # torchvision.ops.sigmoid_focal_loss, per element.
    def loss(t):
        x, y = t["x"], t["y"]
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        alpha_t = alpha * y + (1 - alpha) * (1 - y)
        return alpha_t * ce * (1 - p_t) ** gamma

    return loss


def l1(t):
    return (t["d"] - t["t"]).abs().sum(-1)


def smooth_l1(t):
    return F.smooth_l1_loss(t["d"], t["t"], beta=1.0, reduction="none").sum(-1)


def iou_loss(t):
    p, g = t["p"], t["g"]
    i = inter(p, g)
    iou = i / (area(p) + area(g) - i + BOX_EPS)  # iou(): a plain division
    return -plog(iou.clamp(min=1e-6))


def giou(t):
    i, u, e = reg_terms(t["p"], t["g"])
    return 1 - pdiv(i, u) + pdiv(e - u, e)


def diou(t):
    p, g = t["p"], t["g"]
    i = inter(p, g)
    u = area(p) + area(g) - i + BOX_EPS
    centre_p = (p[:, :2] + p[:, 2:]) / 2
    centre_g = (g[:, :2] + g[:, 2:]) / 2
    rho2 = ((centre_p - centre_g) ** 2).sum(-1)
    lt = torch.minimum(p[:, :2], g[:, :2])
    rb = torch.maximum(p[:, 2:], g[:, 2:])
    c2 = ((rb - lt) ** 2).sum(-1) + BOX_EPS
    return 1 - pdiv(i, u) + pdiv(rho2, c2)


def quality_focal(t):
    # mmdetection's quality_focal_loss (GFL), per element, beta = 2.
    x, y = t["x"], t["y"]
    return F.binary_cross_entropy_with_logits(x, y, reduction="none") * (y - torch.sigmoid(x)).abs() ** 2


# ---- inputs as a detector produces them -------------------------------------------


class Inputs:
    """Random detector-like inputs; every number float32-representable, so the
    float32 and float64 runs see the very same values."""

    def __init__(self, rng, rows):
        self.rng = rng
        self.rows = rows

    @staticmethod
    def f32(v):
        return struct.unpack("f", struct.pack("f", v))[0]

    def u(self, lo, hi):
        return self.f32(self.rng.uniform(lo, hi))

    def logits(self, width=None, mean=0.0, scale=3.0):
        def one():
            # Mostly moderate logits, a few confident ones.
            s = scale * (3 if self.rng.random() < 0.1 else 1)
            return self.f32(self.rng.gauss(mean, s))

        if width is None:
            return [one() for _ in range(self.rows)]
        return [[one() for _ in range(width)] for _ in range(self.rows)]

    def labels(self, classes):
        """One-hot rows incl. background (the last class), 3 background RoIs to 1 positive."""
        out = []
        for _ in range(self.rows):
            row = [0.0] * classes
            row[classes - 1 if self.rng.random() < 0.75 else self.rng.randrange(classes - 1)] = 1.0
            out.append(row)
        return out

    def iou_value(self):
        """A detached IoU of a positive: mostly ordinary, sometimes at the 1e-7 floor or near 1."""
        r = self.rng.random()
        if r < 0.05:
            return self.f32(1e-7)
        if r < 0.1:
            return self.u(0.98, 1.0)
        return self.u(0.05, 0.98)

    def multi_cls(self, classes=81):
        y = self.labels(classes)
        z = [[1.0] * classes if row[-1] == 1 else [self.u(0.5, 1.0)] * classes for row in y]
        return {"X": self.logits(classes), "Y": y, "Z": z}

    def binary_cls(self):
        py = [1.0 if self.rng.random() < 0.2 else 0.0 for _ in range(self.rows)]
        x = [self.f32(self.rng.gauss(0.0 if p else -4.0, 2.5)) for p in py]
        return {"X": x, "Q": [self.iou_value() if p else 0.0 for p in py], "PY": py, "NY": [1 - p for p in py]}

    def binary_cls_confident(self):
        """binary_cls where half the logits are confident, |X| in [8, 40], either sign."""
        t = self.binary_cls()
        t["X"] = [self.u(8, 40) * self.rng.choice([-1, 1]) if self.rng.random() < 0.5 else x for x in t["X"]]
        return t

    def box_pair(self):
        """(pred, gt) of one of the overlap kinds a detector sees."""
        while True:
            x, y = self.u(0, 800), self.u(0, 600)
            w, h = self.u(4, 400), self.u(4, 400)
            g = [x, y, self.f32(x + w), self.f32(y + h)]
            kind = self.rng.randrange(6)
            if kind == 0:  # a good prediction
                p = [g[0] + self.u(-0.1, 0.1) * w, g[1] + self.u(-0.1, 0.1) * h,
                     g[2] + self.u(-0.1, 0.1) * w, g[3] + self.u(-0.1, 0.1) * h]
            elif kind == 1:  # partial overlap
                cx, cy = x + w / 2 + self.u(-0.9, 0.9) * w, y + h / 2 + self.u(-0.9, 0.9) * h
                pw, ph = w * self.u(0.3, 2.0), h * self.u(0.3, 2.0)
                p = [cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2]
            elif kind == 2:  # inside the ground truth
                p = [g[0] + self.u(0.05, 0.3) * w, g[1] + self.u(0.05, 0.3) * h,
                     g[2] - self.u(0.05, 0.3) * w, g[3] - self.u(0.05, 0.3) * h]
            elif kind == 3:  # around it
                p = [g[0] - self.u(0.05, 0.5) * w, g[1] - self.u(0.05, 0.5) * h,
                     g[2] + self.u(0.05, 0.5) * w, g[3] + self.u(0.05, 0.5) * h]
            elif kind == 4:  # disjoint along x, y or both
                dx = self.u(1.1, 3) * w * self.rng.choice([-1, 1]) if self.rng.random() < 0.7 else 0.0
                dy = self.u(1.1, 3) * h * self.rng.choice([-1, 1]) if dx == 0.0 or self.rng.random() < 0.5 else 0.0
                s = self.u(0.5, 1.5)
                p = [g[0] + dx, g[1] + dy, g[0] + dx + s * w, g[1] + dy + s * h]
            else:  # touching exactly: an overlap side of length 0
                s = self.u(0.5, 1.5)
                p = [g[2], g[1] + self.u(-0.4, 0.4) * h, self.f32(g[2] + s * w), g[3] + self.u(-0.4, 0.4) * h]
            p = [self.f32(v) for v in p]
            if p[0] < p[2] and p[1] < p[3] and self.ends_apart(p, g):
                return p, g

    @staticmethod
    def ends_apart(p, g):
        """No two ends along an axis within 0.01, except a pred start exactly at the gt end (touching)."""
        for a in (0, 1):
            ends = [p[a], p[a + 2], g[a], g[a + 2]]
            for i in range(4):
                for j in range(i + 1, 4):
                    if (i, j) == (0, 3) and ends[i] == ends[j]:
                        continue
                    if abs(ends[i] - ends[j]) < 0.01:
                        return False
        return True

    def boxes(self, pred="P", gt="G"):
        pairs = [self.box_pair() for _ in range(self.rows)]
        return {pred: [p for p, _ in pairs], gt: [g for _, g in pairs]}

    def deltas(self):
        """Encoded (dx, dy, dw, dh) deltas; |d - t| away from 0 and from beta = 1."""
        d, t = [], []
        for _ in range(self.rows):
            tr = [self.f32(self.rng.gauss(0, 1)) for _ in range(4)]
            gaps = [self.u(0.02, 0.95) if self.rng.random() < 0.5 else self.u(1.05, 3) for _ in range(4)]
            d.append([self.f32(a + self.rng.choice([-1, 1]) * b) for a, b in zip(tr, gaps)])
            t.append(tr)
        return {"d": d, "t": t}

    def logit_and_label(self):
        y = [1.0 if self.rng.random() < 0.2 else 0.0 for _ in range(self.rows)]
        return {"x": [self.f32(self.rng.gauss(0.0 if v else -4.0, 2.5)) for v in y], "y": y}

    def logit_and_quality(self):
        y = [self.iou_value() if self.rng.random() < 0.3 else 0.0 for _ in range(self.rows)]
        return {"x": [self.f32(self.rng.gauss(0.0 if v else -4.0, 2.5)) for v in y], "y": y}

    def logits_and_one_hot(self, classes=81):
        return {"x": self.logits(classes), "y": self.labels(classes)}


# ---- the cases -------------------------------------------------------------------

PUBLISHED = {
    "A cls": ("multi_cls", "cse_autoloss_a.loss", "cse_autoloss_a_cls",
              "Neg(Dot(Mul(Y,Add(1,Sin(Z))),Log(Softmax(X))))"),
    "A reg": ("reg", "cse_autoloss_a.loss", "cse_autoloss_a_reg",
              "Add(1,Neg(Add(Div(I,U),Neg(Div(Add(E,Neg(Add(I,2))),E)))))"),
    "B cls": ("binary_cls", "cse_autoloss_b.loss", "cse_autoloss_b_cls",
              "Neg(Add(Mul(Q,Mul(Add(1,Serf(Sig(NY))),Log(Sig(X)))),Mul(Add(Sgdf(X),Neg(Q)),Mul(Add(Add(1,Neg(Q)),"
              "Neg(Add(1,Neg(Sig(X))))),Log(Add(1,Neg(Sig(X))))))))"),
    "B reg": ("reg", "cse_autoloss_b.loss", "cse_autoloss_b_reg",
              "Neg(Div(Add(Div(Neg(Add(Neg(E),Add(1,I))),Neg(Add(3,Add(2,U)))),Add(Div(E,E),Div(Neg(E),Neg(1)))),"
              "Neg(Add(Div(Neg(Add(U,Div(I,1))),Neg(3)),Neg(E)))))"),
}
PRESET_INPUTS = {"multi_cls": "multi_cls", "binary_cls": "binary_cls", "reg": "boxes"}
PRED = {"multi_cls": ["X"], "binary_cls": ["X"], "reg": ["P"]}


class Case:
    """One loss on one kind of input. f32 is compared with the float64 reference,
    or, for a formula that is ill-conditioned in float32 on these inputs, with the
    same formula evaluated by torch in float32 (f32_reference="torch-f32")."""

    def __init__(self, label, source, maker, fn, preds, f32_reference="f64"):
        self.label, self.source, self.maker, self.fn, self.preds = label, source, maker, fn, preds
        self.f32_reference = f32_reference


def cases(examples):
    out = []
    for name, (preset, file, loss, deap) in PUBLISHED.items():
        ref = deap_loss(deap, preset)
        maker = PRESET_INPUTS[preset]
        out.append(Case(f"CSE-Autoloss-{name} (published string, --pset {preset})", [deap, "--pset", preset], maker,
                        ref, PRED[preset]))
        out.append(Case(f"CSE-Autoloss-{name} (examples/losses/{file} {loss})",
                        [os.path.join(examples, file), "--loss", loss], maker, ref, PRED[preset]))
    # Confident logits, as a trained classifier gives them: Log(Add(1,Neg(Sig(X)))) takes the log of
    # a 1 - sigmoid(X) that rounds to 0 (X > 16.6 in float32, X > 36.7 in float64). In float32 the
    # formula's value is lost there for any implementation, so f32 is compared with torch's float32.
    preset, _, _, deap = PUBLISHED["B cls"]
    out.append(Case("CSE-Autoloss-B cls, confident logits |X| in [8, 40] (published string)",
                    [deap, "--pset", preset], "binary_cls_confident", deap_loss(deap, preset), ["X"],
                    f32_reference="torch-f32"))

    def example(file, loss=None):
        return [os.path.join(examples, file)] + (["--loss", loss] if loss else [])

    out += [
        Case("cross-entropy, C = 81", example("cross_entropy.loss"), "logits_and_one_hot", cross_entropy, ["x"]),
        Case("sigmoid focal (alpha 0.25, gamma 2)", example("focal.loss"), "logit_and_label",
             sigmoid_focal(0.25, 2.0), ["x"]),
        Case("sigmoid focal --param alpha=0.5 --param gamma=1.5",
             example("focal.loss") + ["--param", "alpha=0.5", "--param", "gamma=1.5"], "logit_and_label",
             sigmoid_focal(0.5, 1.5), ["x"]),
        Case("L1 on box deltas", example("box_l1.loss", "l1"), "deltas", l1, ["d"]),
        Case("smooth-L1 on box deltas (beta 1)", example("box_l1.loss", "smooth_l1"), "deltas", smooth_l1, ["d"]),
        Case("IoU loss -log(max(IoU, 1e-6))", example("iou.loss"), "pg_boxes", iou_loss, ["p"]),
        Case("GIoU loss", example("giou.loss"), "pg_boxes", giou, ["p"]),
        Case("DIoU loss", example("diou.loss"), "pg_boxes", diou, ["p"]),
        Case("quality focal loss (beta 2)", example("qfl.loss"), "logit_and_quality", quality_focal, ["x"]),
    ]
    return out


def make_inputs(gen, maker):
    if maker == "boxes":
        return gen.boxes()
    if maker == "pg_boxes":
        return gen.boxes("p", "g")
    if maker == "deltas":
        return gen.deltas()
    return getattr(gen, maker)()


# ---- comparing --------------------------------------------------------------------

# (rtol, atol); f32 is torch.testing's. atol is in units of the largest reference value of the
# array, so that boxes in pixels and in normalised coordinates are held to the same standard.
TOLERANCE = {"f64": (1e-9, 1e-12), "f32": (1.3e-6, 1e-5)}


def reference(fn, inputs, preds, dtype=torch.float64):
    """The loss per row and the gradients of its sum, evaluated in `dtype`, returned as float64."""
    t = {k: torch.tensor(v, dtype=dtype, requires_grad=k in preds) for k, v in inputs.items()}
    value = fn(t)
    value.sum().backward()
    return value.detach().double(), {k: t[k].grad.double() for k in preds}


def as_tensor(values):
    """JSON numbers (null for NaN or infinity) as float64."""
    def clean(v):
        return [clean(x) for x in v] if isinstance(v, list) else (math.nan if v is None else v)
    return torch.tensor(clean(values), dtype=torch.float64)


def first_mismatch(actual, expected, rtol, atol, what):
    """The worst mismatch as a message, or None. Rows are the first dimension."""
    a, e = as_tensor(actual), expected
    if a.shape != e.shape:
        return f"{what}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    # A value is judged on its own size, a gradient component on its row's largest component.
    scale = e.abs() if e.dim() == 1 else torch.maximum(e.abs(), e.abs().amax(dim=-1, keepdim=True))
    allowed = rtol * scale + atol * e.abs().max().clamp(min=1e-30)
    excess = torch.where(torch.isfinite(a), (a - e).abs() - allowed, torch.full_like(a, math.inf))
    if excess.max() <= 0:
        return None
    idx = tuple((excess == excess.max()).nonzero()[0].tolist())
    return (f"{what}[{','.join(map(str, idx))}] = {a[idx].item()!r}, expected {e[idx].item()!r} "
            f"(difference {abs(a[idx].item() - e[idx].item()):.3g}, allowed {allowed[idx].item():.3g})")


def run_cli(cli, source_args, inputs, dtype, workdir):
    path = os.path.join(workdir, "inputs.json")
    with open(path, "w") as f:
        json.dump(inputs, f)
    command = [cli, "eval"] + source_args + ["--inputs", path, "--json", "--grad", "--dtype", dtype]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    # Exit status 3 still prints the results (NaN and infinity as null): let the comparison report them.
    if done.returncode not in (0, 3):
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", required=True, help="the lossforge executable")
    parser.add_argument("--examples", default=os.path.join(here, "..", "..", "examples", "losses"))
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args()

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="lossforge-ref-") as workdir:
        for number, case in enumerate(cases(args.examples)):
            inputs = make_inputs(Inputs(random.Random(args.seed * 1000 + number), args.rows), case.maker)
            for dtype in ("f64", "f32"):
                rtol, atol = TOLERANCE[dtype]
                against = torch.float32 if dtype == "f32" and case.f32_reference == "torch-f32" else torch.float64
                try:
                    value, grads = reference(case.fn, inputs, case.preds, against)
                    out = run_cli(args.cli, case.source, inputs, dtype, workdir)
                    problems = [first_mismatch(out["loss"], value, rtol, atol, "loss")]
                    problems += [first_mismatch(out["grad"][k], grads[k], rtol, atol, f"grad {k}")
                                 for k in case.preds]
                    problems = [p for p in problems if p]
                except Exception as e:  # a crash, a bad exit or bad JSON is a failure of the case
                    problems = [f"{type(e).__name__}: {e}"]
                what = f"{dtype} {case.label}" + (" (against torch float32)" if against == torch.float32 else "")
                if problems:
                    failed += 1
                    print(f"FAIL {what}: " + "; ".join(problems))
                else:
                    passed += 1
                    print(f"ok   {what} ({args.rows} rows)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
