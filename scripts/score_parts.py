"""Which part of the hybrid classifier gets a finished run's test images right, task by task.

    python scripts/score_parts.py RUN_DIR [RUN_DIR ...]

Loads the run's last checkpoint as a resume would and scores every seen task's test images after the
last task with P_T alone, P_V alone (the stored prototypes), the hybrid the run predicts with, and
P_V with the frozen-CLIP class means in place of the stored prototypes (seca-method.md §4, §6).
Prints one line per part: the mean over tasks and a_{T,i} for each task i = 1…T.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from engine import distributed  # noqa: E402
from engine.config import load  # noqa: E402
from engine.events import NullEvents  # noqa: E402
from engine.seca.classifier import text_scores, visual_scores  # noqa: E402
from engine.train import Trainer  # noqa: E402


@torch.no_grad()
def score_parts(run_dir: Path) -> dict[str, list[float]]:
    """Accuracy (%) per seen task of each score, after the run's last checkpointed task."""
    cfg = load(str(run_dir / "config.yaml"))
    trainer = Trainer(cfg, run_dir, NullEvents(), threading.Event(), distributed.Dist())
    learner, task = trainer.learner, trainer.restore().done
    learner.eval()
    learner.begin_eval(task)
    k, fusion = cfg.seca.infer_scale, cfg.seca.fusion
    parts: dict[str, list[float]] = {}
    for i in range(task + 1):
        correct: dict[str, int] = {}
        total = 0
        for images, labels, _ in trainer.feature_loader(trainer.test_images(i)):
            f = F.normalize(learner.clip.encode_image(images, learner.adapters), dim=-1)
            p_t = text_scores(f, learner.eval_text, k)
            scores = {"P_T": p_t}
            if learner.bank.vectors is not None:
                p_v = visual_scores(f, learner.bank.vectors[: learner.seen], k)
                scores |= {"P_V stored": p_v, "hybrid": fusion * p_t + (1 - fusion) * p_v}
            if learner.coarse.vectors is not None:
                scores["P_V frozen means"] = visual_scores(f, learner.coarse.vectors[: learner.seen], k)
            for name, s in scores.items():
                correct[name] = correct.get(name, 0) + int((s.argmax(dim=1) == labels).sum())
            total += len(labels)
        for name, n in correct.items():
            parts.setdefault(name, []).append(100.0 * n / total)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        print(run_dir)
        for name, accs in score_parts(run_dir).items():
            print(f"  {name:<17} mean {sum(accs) / len(accs):5.1f} | " + " ".join(f"{a:5.1f}" for a in accs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
