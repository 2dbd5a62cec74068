"""``python -m engine.bench``: how fast the SECA step runs here, against what the hardware can do.

Measures, at the method's real shapes on a GPU (ViT-B/16, 224 px, batch 64, a full pool of 5, 200
seen classes; synthetic pixels, random weights) or a reduced shape on a CPU:
training and evaluation images/s of the real learner, the FLOPs of one training step (torch's
FlopCounterMode) and the achieved TFLOP/s against the device's bf16 peak, image decoding and batch
images/s of the real data path, and peak memory. ``--full-run`` also times a whole 10-task
ImageNet-R-shaped SECA run (24,000 training images, 10 epochs per task) through the real engine.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torch.utils.flop_counter import FlopCounterMode

from engine.config import from_flat
from engine.data.loader import Preprocess, TaskImages, batches, decode
from engine.data.scenario import TaskPlan
from engine.data.source import Split
from engine.learner import build_learner
from engine.model.clip import load_clip

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A6000": 155.0, "4090": 165.0, "V100": 125.0}


@dataclass
class Shape:
    model: str
    batch: int
    classes: int
    tasks: int
    pool: int
    steps: int
    eval_batch: int
    run_train: int  # --full-run: training and test images per class of the synthetic dataset
    run_test: int


GPU = Shape("ViT-B-16", 64, 200, 10, 5, 30, 64, 120, 30)  # the full run: ImageNet-R's 24,000 / 6,000 images
CPU = Shape("seca-tiny", 16, 40, 10, 5, 6, 64, 4, 2)

# The goals on a GPU (issue 6): (row, result key, test, goal as printed)
GOALS = [
    ("fraction of peak", "peak_fraction", lambda v: v >= 0.40, "≥ 40%"),
    ("data / train speed", "data_over_train", lambda v: v >= 2.0, "≥ 2×"),
    ("full 10-task run s", "full_run_s", lambda v: v < 300.0, "< 300 s"),
]


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_images(n: int, size: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g).to(device)


def build(shape: Shape, device: torch.device):
    """The SECA learner brought to its last task with a full pool (earlier tasks on 1 image per class)."""
    cfg = from_flat({"method": "seca", "model.name": shape.model, "model.pretrained": "none",
                     "seca.pool_size": shape.pool, "scenario.n_tasks": shape.tasks})
    clip = load_clip(cfg.model, device)
    per = shape.classes // shape.tasks
    plan = TaskPlan(list(range(shape.classes)), [f"class {c}" for c in range(shape.classes)],
                    [list(range(t * per, (t + 1) * per)) for t in range(shape.tasks)])
    learner = build_learner(cfg, clip, plan, device)
    pre = Preprocess(clip.preprocess)
    size = clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple) else clip.visual.image_size
    for t in range(shape.tasks - 1):
        data = TaskImages(random_images(per, size, device, t), torch.tensor(plan.tasks[t], device=device))
        learner.begin_task(t, batches(data, pre, shape.eval_batch))
        learner.end_task(t, batches(data, pre, shape.eval_batch))
    return cfg, plan, learner, pre, size


def measure_step(shape: Shape, device: torch.device) -> dict:
    cfg, plan, learner, pre, size = build(shape, device)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    last = shape.tasks - 1
    n = shape.batch * (shape.steps + 2)  # a warm-up step and the FLOP-counted one, then the timed ones
    labels = torch.tensor(plan.tasks[last], device=device).repeat(n // len(plan.tasks[last]) + 1)[:n]
    data = TaskImages(random_images(n, size, device, 99), labels)
    t0 = time.perf_counter()
    learner.begin_task(last, batches(data, pre, shape.eval_batch))  # prototypes + teacher cache
    sync(device)
    setup = time.perf_counter() - t0
    optimizer = torch.optim.Adam(learner.param_groups(cfg.train), weight_decay=cfg.train.weight_decay)
    learner.train()

    def step(images, y, pos):
        with autocast():
            total = sum(learner.losses(images, y, pos).values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    loader = list(batches(data, pre, shape.batch, shuffle=True))
    step(*loader[0])  # warm-up: allocator, kernels, lazy inits
    with FlopCounterMode(display=False) as counter:
        step(*loader[1])
    flops = counter.get_total_flops()
    sync(device)
    t0 = time.perf_counter()
    for b in loader[2:]:
        step(*b)
    sync(device)
    train_ips = shape.batch * (len(loader) - 2) / (time.perf_counter() - t0)

    learner.eval()
    learner.end_task(last, batches(data, pre, shape.eval_batch))  # the bank gains this task's prototypes
    learner.begin_eval(last)
    with torch.no_grad():
        eval_loader = list(batches(data, pre, shape.eval_batch))
        with autocast():
            learner.scores(eval_loader[0][0])
        sync(device)
        t0 = time.perf_counter()
        for images, _, _ in eval_loader:
            with autocast():
                learner.scores(images)
        sync(device)
    eval_ips = n / (time.perf_counter() - t0)
    achieved = flops * train_ips / shape.batch / 1e12
    peak = peak_tflops(device)
    return {"train_ips": train_ips, "eval_ips": eval_ips, "step_tflop": flops / 1e12, "achieved_tflops": achieved,
            "peak_tflops": peak, "peak_fraction": achieved / peak if peak else None, "task_setup_s": setup,
            "image_size": size}


def measure_data(size: int, device: torch.device, n: int = 512, source_px: int = 400) -> dict:
    """JPEG decode + resize/crop to uint8 (threads), then batches normalised on the device."""
    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (source_px, source_px, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    split = Split(items=blobs, labels=[0] * n, load=lambda b: Image.open(io.BytesIO(b)))
    pre = Preprocess(T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                                T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]))
    t0 = time.perf_counter()
    data = decode(split, {0: 0}, pre, True, print, device)
    sync(device)
    decode_ips = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(5):
        for images, _, _ in batches(data, pre, 64, shuffle=True):
            pass
    sync(device)
    return {"decode_ips": decode_ips, "batch_ips": 5 * n / (time.perf_counter() - t0)}


def full_run(shape: Shape, size: int, device: torch.device, epochs: int = 10) -> dict:
    """A whole SECA run through the engine on the synthetic dataset: on a GPU ImageNet-R-shaped (10 tasks
    of 20 classes, 120 + 30 images each at 224 px), on a CPU the reduced shape."""
    from engine.train import run  # the whole engine, only when asked for

    cfg = from_flat({"method": "seca", "data.name": "synthetic", "data.synthetic_classes": shape.classes,
                     "data.train_per_class": shape.run_train, "data.test_per_class": shape.run_test,
                     "data.synthetic_size": size, "scenario.n_tasks": shape.tasks, "model.name": shape.model,
                     "model.pretrained": "none", "seca.pool_size": shape.pool, "train.epochs": epochs,
                     "train.batch_size": shape.batch, "train.milestones": [2, 5], "train.log_every": 50,
                     "train.device": device.type})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        code = run(cfg, Path(tmp) / "run")
        seconds = time.perf_counter() - t0
        events = [json.loads(line) for line in (Path(tmp) / "run" / "events.jsonl").read_text().splitlines()]
    trained = sum(e["seconds"] for e in events if e["type"] == "task_finished")
    return {"full_run_s": seconds, "full_run_exit": code, "full_run_end": events[-1]["type"],
            "full_run_last": events[-1].get("last"), "full_run_epochs": epochs,
            "full_run_train_ips": shape.classes * shape.run_train * epochs / trained if trained else None}


def goals(result: dict) -> list[tuple[str, bool | None]]:
    """Each goal of :data:`GOALS` with whether this result meets it (``None``: not measured here)."""
    return [(f"{row} {goal}", None if result.get(key) is None else test(result[key])) for row, key, test, goal in GOALS]


def peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB


def table(result: dict) -> str:
    def f(v, fmt="{:.1f}"):
        return "—" if v is None else fmt.format(v)

    rows = [
        ("device", result["device"]), ("shape", result["shape"]),
        ("train images/s", f(result["train_ips"])), ("eval images/s", f(result["eval_ips"])),
        ("TFLOP per train step", f(result["step_tflop"], "{:.4g}")),
        ("achieved TFLOP/s", f(result["achieved_tflops"], "{:.4g}")), ("bf16 peak TFLOP/s", f(result["peak_tflops"])),
        ("fraction of peak", f(result["peak_fraction"], "{:.1%}")), ("task setup s (prototypes, teacher cache)", f(result["task_setup_s"], "{:.2f}")),
        ("decode images/s (JPEG → uint8)", f(result["decode_ips"])), ("batch images/s (cached → device)", f(result["batch_ips"])),
        ("data / train speed", f(result["data_over_train"], "{:.1f}×")),
        ("peak memory GiB", f(result["peak_memory_gib"], "{:.2f}")),
    ]
    if "full_run_s" in result:
        rows.append(("full 10-task run s", f(result["full_run_s"])))
        rows.append(("full run ended with", result["full_run_end"]))
        rows.append(("full run images/s (train × epochs / task time)", f(result["full_run_train_ips"])))
        rows.append(("full run Last %", f(result["full_run_last"])))
    if result["peak_tflops"] is not None:  # the goals are a GPU's
        rows += [(f"goal: {name}", {True: "met", False: "NOT met", None: "—"}[ok]) for name, ok in goals(result)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--full-run", action="store_true", help="also time a 10-task ImageNet-R-shaped run")
    parser.add_argument("--full-run-epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, help="timed training steps")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check-goals", action="store_true", help="exit 1 when a GPU goal of issue 6 is not met")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    shape = GPU if device.type == "cuda" else CPU
    if args.steps:
        shape = Shape(**{**asdict(shape), "steps": args.steps})
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)",
              "shape": f"{shape.model}, batch {shape.batch}, {shape.classes} classes, pool {shape.pool}"}
    result |= measure_step(shape, device)
    result |= measure_data(result["image_size"], device)
    result["data_over_train"] = result["batch_ips"] / result["train_ips"]
    if args.full_run:
        result |= full_run(shape, result["image_size"], device, args.full_run_epochs)
    result["peak_memory_gib"] = peak_memory(device)
    print(json.dumps(result) if args.json else table(result))
    failed = args.full_run and result["full_run_exit"] != 0
    return 1 if failed or (args.check_goals and any(ok is False for _, ok in goals(result))) else 0


if __name__ == "__main__":
    sys.exit(main())
