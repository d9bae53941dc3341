#!/usr/bin/env python3
"""PyTorch eager and torch.compile on the SPEC §7 workloads (fp32, three also
in bf16 or f16; forward + backward of the mean loss, median of 40), the same
formulas as the .loss files written as one eager op per node (what
CSE-Autoloss users run), plus the copy bandwidth that gives each workload's
floor. Prints JSON (bench/gpu/run.sh).

  torch_bench.py [--quick] [--go-file PATH]

With --go-file it compiles every workload first (torch.compile's first call is
CPU work, so run.sh overlaps it with its own build), then waits until PATH
exists before it times anything on a quiet machine."""
import json
import math
import os
import sys
import time

import torch

quick = "--quick" in sys.argv
go_file = sys.argv[sys.argv.index("--go-file") + 1] if "--go-file" in sys.argv else None
scale = 0.1 if quick else 1.0
dev = "cuda"
EPS = 1e-20


def plog(a):
    return torch.log(a + EPS)


def pdiv(a, b):
    return a / (b + EPS)


def serf(a):
    return (torch.erf(math.sqrt(math.pi) / 2 * a / 2) + 1) / 2


def sgdf(a):
    return ((2 / math.pi) * 2 * torch.atan(torch.tanh(math.pi * a / 8)) + 1) / 2


def focal(x, y):
    p = torch.sigmoid(x)
    pt = p * y + (1 - p) * (1 - y)
    at = 0.25 * y + 0.75 * (1 - y)
    return -at * (1 - pt) ** 2 * plog(pt)


def cse_b_cls(x, q, py, ny):
    p = torch.sigmoid(x)
    pos = q * (1 + serf(torch.sigmoid(ny))) * plog(p)
    neg = (sgdf(x) - q) * ((1 - q) - (1 - p)) * plog(1 - p)
    return -(pos + neg)


def box_terms(p, g):
    iw = (torch.minimum(p[:, 2], g[:, 2]) - torch.maximum(p[:, 0], g[:, 0])).clamp(min=0)
    ih = (torch.minimum(p[:, 3], g[:, 3]) - torch.maximum(p[:, 1], g[:, 1])).clamp(min=0)
    i = iw * ih
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    u = area(p) + area(g) - i + 1e-7
    ew = (torch.maximum(p[:, 2], g[:, 2]) - torch.minimum(p[:, 0], g[:, 0])).clamp(min=0)
    eh = (torch.maximum(p[:, 3], g[:, 3]) - torch.minimum(p[:, 1], g[:, 1])).clamp(min=0)
    return i, u, ew * eh + 1e-7


def giou(p, g):
    i, u, e = box_terms(p, g)
    return 1 - i / u + (e - u) / e


def cse_a_reg(p, g):
    i, u, e = box_terms(p, g)
    return 1 - pdiv(i, u) + pdiv(e - (i + 2), e)


def cse_b_reg(p, g):
    i, u, e = box_terms(p, g)
    num = pdiv(1 + i - e, u + 5) + 1 + e
    den = e - pdiv(u + i, 3)
    return -pdiv(num, den)


def cross_entropy(x, y):
    return -(y * torch.log_softmax(x, dim=1)).sum(dim=1)


def cse_a_cls(x, y, z):
    return -(y * (1 + torch.sin(z)) * plog(torch.softmax(x, dim=1))).sum(dim=1)


def boxes(n):
    xy = torch.rand(n, 2, device=dev) * 100
    wh = 1 + torch.rand(n, 2, device=dev) * 50
    p = torch.cat([xy, xy + wh], dim=1)
    g = p + torch.rand(n, 4, device=dev) * 5
    g[:, 2] = torch.maximum(g[:, 2], g[:, 0] + 1)
    g[:, 3] = torch.maximum(g[:, 3], g[:, 1] + 1)
    return p, g


def binary(n):
    return (torch.rand(n, device=dev) < 0.1).float()


def workloads():
    n = int(25.6e6 * scale)
    b = int(4e6 * scale)
    r = int(200e3 * scale)
    x = (torch.rand(n, device=dev) * 8 - 4)
    py = binary(n)
    yield "focal_25.6M", focal, [x, binary(n)], 12 * n
    yield "cse_b_cls_25.6M", cse_b_cls, [x, binary(n), py, 1 - py], 20 * n
    for name, f in [("giou_4M", giou), ("cse_a_reg_4M", cse_a_reg), ("cse_b_reg_4M", cse_b_reg)]:
        p, g = boxes(b)
        yield name, f, [p, g], 48 * b
    logits = torch.randn(r, 81, device=dev) * 4
    onehot = torch.nn.functional.one_hot(torch.randint(0, 81, (r,), device=dev), 81).float()
    yield "cross_entropy_200kx81", cross_entropy, [logits, onehot], 12 * 81 * r
    yield "cse_a_cls_200kx81", cse_a_cls, [logits, onehot, torch.rand(r, 81, device=dev)], 16 * 81 * r
    # 16-bit inputs (as under autocast), the eager ops in that dtype; half the floor's bytes.
    yield "focal_25.6M_bf16", focal, [x.bfloat16(), binary(n).bfloat16()], 6 * n
    p, g = boxes(b)
    yield "giou_4M_f16", giou, [p.half(), g.half()], 24 * b
    yield "cross_entropy_200kx81_bf16", cross_entropy, [logits.bfloat16(), onehot.bfloat16()], 6 * 81 * r


def time_ms(step, reps=40):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def copy_bandwidth():
    a = torch.empty(int(256e6 // 4), device=dev)
    b = torch.empty_like(a)
    ms = time_ms(lambda: b.copy_(a))
    return 2 * a.numel() * 4 / (ms * 1e-3)


def wait_for(path, limit_s=900):
    """Until run.sh says the machine is quiet (or limit_s passes)."""
    start = time.perf_counter()
    while path and not os.path.exists(path) and time.perf_counter() - start < limit_s:
        time.sleep(0.2)


def main():
    # Ten workloads share one wrapper's code object: without these, dynamo would
    # stop recompiling after 8 and fall back to eager, or make shapes dynamic.
    import torch._dynamo

    for name, value in [("recompile_limit", 64), ("cache_size_limit", 64), ("automatic_dynamic_shapes", False)]:
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, value)
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "workloads": []}
    prepared = []
    for name, f, inputs, floor_bytes in workloads():
        pred = inputs[0].clone().requires_grad_(True)
        rest = inputs[1:]
        entry = {"name": name}
        compiled = None
        try:
            compiled = torch.compile(lambda a, *r, f=f: f(a, *r).mean())
            start = time.perf_counter()
            compiled(pred, *rest).backward()
            torch.cuda.synchronize()
            entry["compile_first_call_s"] = time.perf_counter() - start
        except Exception as e:  # torch.compile needs Triton and a C compiler; report instead of failing
            entry["compile_error"] = str(e).splitlines()[0][:200]
            compiled = None
        print(f"compiled {name}", file=sys.stderr, flush=True)
        prepared.append((entry, f, pred, rest, compiled, floor_bytes))
    wait_for(go_file)
    bandwidth = copy_bandwidth()
    out["copy_bandwidth_Bps"] = bandwidth
    for entry, f, pred, rest, compiled, floor_bytes in prepared:

        def eager():
            pred.grad = None
            f(pred, *rest).mean().backward()

        def comp():
            pred.grad = None
            compiled(pred, *rest).backward()

        entry["floor_ms"] = floor_bytes / bandwidth * 1e3
        try:
            entry["eager_ms"] = time_ms(eager)
            if compiled is not None:
                entry["compiled_ms"] = time_ms(comp)
        except Exception as e:  # one workload's failure keeps the others' numbers
            entry["timing_error"] = str(e).splitlines()[0][:200]
        out["workloads"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
