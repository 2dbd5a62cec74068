"""The training loop: for each task, prepare, train, evaluate every seen task, checkpoint, report.

Everything the outside world learns goes through ``events.jsonl``; checkpoints after every task let
``--resume`` continue at the next task with the same final numbers as an uninterrupted run.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch

from engine import checkpoint, distributed, metrics
from engine.config import Config, ConfigError, save, to_dict
from engine.data.loader import Preprocess, TaskImages, batches, decode
from engine.data.registry import load_source
from engine.data.scenario import TaskPlan, build_plan
from engine.events import EventWriter, Heartbeat, NullEvents
from engine.learner import build_learner
from engine.model.clip import load_clip


log = logging.getLogger("engine")  # engine.log's story: tasks, A_t, checkpoints, stops, resumes, warnings


def _numbered(task: int) -> int:
    """engine.log numbers tasks 1…T for people, as every seca-tui view does (events stay 0-based)."""
    return task + 1


class StopRequested(Exception):
    """SIGTERM arrived: the current step finished, the run stops at its last checkpoint."""


@dataclass
class Progress:
    """What the loop has done so far; saved in each checkpoint."""

    done: int = -1  # last finished task (0-based), -1 before the first
    acc: list = None  # accuracy matrix rows a_{t,·}
    n: list = None  # test samples per task

    def __post_init__(self):
        self.acc = self.acc or []
        self.n = self.n or []


def pick_device(name: str, d: distributed.Dist) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"Config key 'train.device' is '{name}', but no CUDA device is available here.")
    return distributed.device_for(name, d)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except OSError:
        return None


def clip_digest(model: torch.nn.Module) -> str:
    """sha256 over CLIP's parameters and buffers, in state_dict order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class Trainer:
    def __init__(self, cfg: Config, run_dir: Path, events: EventWriter, stop: threading.Event, d: distributed.Dist):
        self.cfg, self.run_dir, self.events, self.stop, self.dist = cfg, Path(run_dir), events, stop, d
        self.warned: set[str] = set()
        self.device = pick_device(cfg.train.device, d)
        distributed.init(self.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
        # Start-up takes a while before run_started (rendering shapes-r, loading CLIP): readers see which part.
        self.phase("data", f"preparing dataset {cfg.data.name}")
        self.source = load_source(cfg.data)
        self.plan: TaskPlan = build_plan(cfg.scenario, self.source.class_names)
        torch.manual_seed(cfg.train.seed)  # a randomly initialised CLIP (pretrained: none) is the same on resume
        self.phase("model", f"loading model {cfg.model.name}")
        self.clip = load_clip(cfg.model, self.device)
        # `auto` is recorded as what it resolved to, so config.yaml and run_started say which activation ran
        cfg.model.quick_gelu = "true" if self.clip.weights.quick_gelu else "false"
        self.clip_digest = clip_digest(self.clip.model)
        self.learner = build_learner(cfg, self.clip, self.plan, self.device, d)
        self.preprocess = Preprocess(self.clip.preprocess)
        self.test_cache: dict[int, TaskImages] = {}
        # bf16 autocast on GPU (the method's setting); exact fp32 on CPU so runs are reproducible
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.device.type == "cuda" else nullcontext

    def phase(self, phase: str, message: str, **fields) -> None:
        """What the engine is doing now, for readers waiting on a long stretch without other events."""
        self.events.emit("phase", phase=phase, message=message, **fields)

    # ------------------------------------------------------------------------------------ data

    def images(self, split, labels: list[int]) -> TaskImages:
        """The decoded images of the classes ``labels`` (remapped labels) in ``split``."""
        wanted = set(labels)
        label_of = {c: k for k, c in enumerate(self.plan.order) if k in wanted}
        return decode(split, label_of, self.preprocess, self.cfg.data.bad_images == "skip", self.warn_once,
                      self.device, self.cfg.data.workers)

    def test_images(self, task: int) -> TaskImages:
        """Test images of a task, decoded once per run: every later task evaluates them again."""
        if task not in self.test_cache:
            self.test_cache[task] = self.images(self.source.test, self.plan.tasks[task])
        return self.test_cache[task]

    # ------------------------------------------------------------------------------------ run

    def write_run_files(self) -> dict[str, str]:
        digests = {}
        for name, text in self.source.run_files.items():
            (self.run_dir / name).write_text(text)
            digests[name] = hashlib.sha256(text.encode()).hexdigest()
        return digests

    def start(self, resume: bool) -> Progress:
        progress = self.restore() if resume else Progress()
        if self.dist.main:  # with quick_gelu resolved
            save(self.cfg, self.run_dir / "config.yaml")
        # a resumed run announces itself again (resumed: true), so readers see it running at once
        self.events.emit(
            "run_started",
            resumed=resume,
            after_task=progress.done,
            run_id=self.run_dir.name,
            config=to_dict(self.cfg),
            env={"python": platform.python_version(), "torch": torch.__version__, "open_clip": open_clip.__version__,
                 "device": str(self.device), "host": platform.node(), "pid": os.getpid(), "git": _git_commit(),
                 "clip_sha256": self.clip_digest, "activation": self.clip.activation,
                 "activation_from": self.clip.weights.reason},
            dataset={"name": self.source.name, "classes": len(self.source.class_names),
                     "train": len(self.source.train), "test": len(self.source.test), "files": self.write_run_files()},
            class_names=self.plan.class_names,
            tasks=self.plan.tasks,
        )
        if self.clip.weights.warning:
            self.warn(self.clip.weights.warning)
        if not resume:
            log.info("starting: %s on %s, %d tasks, device %s", self.cfg.method, self.source.name,
                     len(self.plan.tasks), self.device)
        return progress

    def warn(self, message: str) -> None:
        """A warning for the run's readers (a log event) and for engine.log."""
        self.events.emit("log", level="warning", message=message)
        log.warning(message)

    def restore(self) -> Progress:
        """Load the newest checkpoint that verifies and matches this run; fall back to older ones."""
        errors = []
        for path in checkpoint.available(self.run_dir):
            try:
                state = checkpoint.load(path)
                if state["plan"] != self.plan.fingerprint() or state["model"] != self.cfg.model.name:
                    raise checkpoint.CheckpointError(f"Checkpoint {path} belongs to another model or task plan.")
                self.learner.restore(state["learner"])
                log.info("resuming after task %d/%d from %s", _numbered(state["task"]), len(self.plan.tasks),
                         path.relative_to(self.run_dir) if path.is_relative_to(self.run_dir) else path)
                return Progress(state["task"], state["acc"], state["n"])
            except checkpoint.CheckpointError as e:
                errors.append(str(e))
                self.warn(f"{e} Trying an earlier checkpoint.")
        if errors:
            raise checkpoint.CheckpointError(errors[0])
        log.info("resuming: no task was checkpointed yet, so the run starts from task 1")
        return Progress()  # nothing finished yet: start from the first task

    def run(self, resume: bool = False) -> None:
        progress = self.start(resume)
        for task in range(progress.done + 1, len(self.plan.tasks)):
            if self.dist.any(self.stop.is_set(), self.device):
                log.info("stop signal received before task %d: stopping", _numbered(task))
                raise StopRequested
            t0 = time.time()
            self.events.emit("task_started", task=task, classes=self.plan.tasks[task])
            self.phase("task", f"building task {_numbered(task)}: decoding images, caching features", task=task)
            torch.manual_seed(self.cfg.train.seed * 1000 + task)  # per task, so a resumed run matches
            train_set = self.images(self.source.train, self.plan.tasks[task])
            log.info("task %d/%d started: %d classes, %d training images", _numbered(task), len(self.plan.tasks),
                     len(self.plan.tasks[task]), len(train_set))
            self.learner.begin_task(task, self.feature_loader(train_set))
            if self.learner.trains and self.cfg.train.epochs:
                self.train_task(task, train_set)
            self.phase("eval", f"finishing task {_numbered(task)}, then evaluating every task so far", task=task)
            for type_, body in self.learner.end_task(task, self.feature_loader(train_set)):
                self.events.emit(type_, **body)
            self.evaluate(task, progress)
            progress.done = task
            if self.dist.main:  # one writer; every rank holds the same state
                path, digest = checkpoint.save(self.run_dir, task, {
                    "task": task, "acc": progress.acc, "n": progress.n, "plan": self.plan.fingerprint(),
                    "model": self.cfg.model.name, "learner": self.learner.checkpoint_state(),
                })
                self.events.emit("checkpoint", task=task, path=str(path.relative_to(self.run_dir)), sha256=digest)
                log.info("checkpoint written: %s", path.relative_to(self.run_dir))
            self.events.emit("task_finished", task=task, seconds=round(time.time() - t0, 3))
            log.info("task %d/%d finished in %.1f s: A_%d = %.2f %%", _numbered(task), len(self.plan.tasks),
                     time.time() - t0, _numbered(task), metrics.average_incremental(progress.acc[-1], progress.n))
            self.events.sync()
        # the backbone must come out exactly as it went in: a changed digest is a bug, not a result
        if clip_digest(self.clip.model) != self.clip_digest:
            raise RuntimeError("CLIP's frozen weights changed during training.")
        summary = metrics.summary(progress.acc, progress.n)
        self.events.emit("run_finished", **summary, clip_sha256=self.clip_digest)
        log.info("run finished: Last %.2f, Avg %.2f", summary["last"], summary["avg"])

    def feature_loader(self, data: TaskImages, sharded: bool = False):
        """Ordered batches; ``sharded``: this rank's part only (evaluation). The learner's feature
        passes see every image on every rank, so prototypes and caches agree without a gather."""
        rank, world = (self.dist.rank, self.dist.world) if sharded else (0, 1)
        return batches(data, self.preprocess, self.cfg.train.eval_batch_size, False, 0, rank, world)

    def warn_once(self, message: str) -> None:
        """A skipped image is named once per run in the events, however many epochs meet it."""
        if message not in self.warned:
            self.warned.add(message)
            self.warn(f"skipped: {message}")

    def train_task(self, task: int, train_set: TaskImages) -> None:
        cfg = self.cfg.train
        # train.batch_size is the global batch: each rank takes its part of every global batch
        loader = batches(train_set, self.preprocess, cfg.batch_size, True, cfg.seed * 1000 + task,
                         self.dist.rank, self.dist.world)
        optimizer = torch.optim.Adam(self.learner.param_groups(cfg), weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.milestones, cfg.gamma)
        model = self.learner.data_parallel()
        steps_total = cfg.epochs * len(loader)
        step, seen, t_log = 0, 0, time.time()
        for epoch in range(cfg.epochs):
            self.learner.train()
            for k, (images, labels, positions) in enumerate(loader):
                with self.autocast():
                    losses = model(images, labels, positions)
                total = sum(losses.values())
                optimizer.zero_grad(set_to_none=True)
                (total * loader.sampler.share(k)).backward()  # DDP averages: shares make it the global mean
                optimizer.step()
                step, seen = step + 1, seen + len(images) * self.dist.world
                if step % cfg.log_every == 0 or step == steps_total:
                    now = time.time()
                    self.events.emit(
                        "step", task=task, epoch=epoch, step=step, steps_total=steps_total,
                        losses={k: round(v.item(), 6) for k, v in losses.items()} | {"total": round(total.item(), 6)},
                        lr=optimizer.param_groups[0]["lr"], ips=round(seen / max(now - t_log, 1e-9), 2),
                        **({"gpu_mem": torch.cuda.max_memory_allocated(self.device)} if self.device.type == "cuda" else {}),
                    )
                    seen, t_log = 0, now
                if self.dist.any(self.stop.is_set(), self.device):
                    log.info("stop signal received: stopping after step %d of task %d", step, _numbered(task))
                    raise StopRequested
            scheduler.step()
        self.learner.eval()

    @torch.no_grad()
    def evaluate(self, task: int, progress: Progress) -> None:
        """a_{task,i} for every seen task i, on its own test set; A_t sample-weighted."""
        self.learner.eval()
        self.learner.begin_eval(task)
        accs, counts = [], []
        for i in range(task + 1):
            test_set = self.test_images(i)
            tally = torch.zeros(2, dtype=torch.long, device=self.device)  # correct, total; no sync per batch
            for images, labels, _ in self.feature_loader(test_set, sharded=True):
                with self.autocast():
                    pred = self.learner.scores(images).argmax(dim=-1)
                tally += torch.stack([(pred == labels).sum(), torch.tensor(len(labels), device=self.device)])
            correct, total = self.dist.sum(tally).tolist()
            accs.append(100.0 * correct / max(total, 1))
            counts.append(total)
        progress.acc.append(accs)
        progress.n = counts
        self.events.emit("eval", after_task=task, task_acc=accs, task_n=counts,
                         acc=metrics.average_incremental(accs, counts))


def describe_failure(e: BaseException, cfg: Config) -> tuple[str, int]:
    """(one-sentence error for `run_failed`, exit code) for an exception that ended a run."""
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return (f"Out of GPU memory with train.batch_size={cfg.train.batch_size}; try a smaller one, e.g. "
                f"--set train.batch_size={max(1, cfg.train.batch_size // 2)}.", 1)
    if isinstance(e, ConfigError):
        return str(e), 2
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        where = f" while writing {e.filename}" if e.filename else ""
        return f"The disk is full{where}; free space, then resume the run from its last checkpoint.", 1
    return f"{type(e).__name__}: {e}", 1


def run(cfg: Config, run_dir: Path, resume: bool = False, stop: threading.Event | None = None) -> int:
    """Run (or resume) one experiment in ``run_dir``; returns the process exit code. SIGTERM or
    SIGINT set ``stop``: the current step finishes and the run ends at its last checkpoint."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    d = distributed.from_env()
    events = EventWriter(run_dir / "events.jsonl") if d.main else NullEvents()
    if stop is None:  # called in-process; ``python -m engine`` sets its handlers before torch loads
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # graceful: finish the step, keep the last checkpoint
            signal.signal(sig, lambda *_: stop.set())
    heartbeat = Heartbeat(events, cfg.train.heartbeat_seconds)
    heartbeat.start()
    try:
        Trainer(cfg, run_dir, events, stop, d).run(resume)
        return 0
    except StopRequested:
        done = checkpoint.available(run_dir)
        events.emit("run_stopped", after_task=int(done[0].stem.split("-")[1]) if done else -1)
        log.info("run stopped; resume continues after %s", done[0].relative_to(run_dir) if done else "nothing: no checkpoint yet")
        return 0
    except Exception as e:
        error, code = describe_failure(e, cfg)
        trace = None if isinstance(e, ConfigError) else traceback.format_exc()
        try:
            events.emit("run_failed", error=error, traceback=trace)
        except OSError:  # the events file itself cannot be written (a full disk): the log still says why
            pass
        print(f"run failed: {error}", file=sys.stderr)
        if trace:
            print(trace, file=sys.stderr)
        return code
    finally:
        heartbeat.stop()
        try:
            events.close()
        except OSError:
            pass
        distributed.shutdown()
