"""What is learned and how it predicts: zero-shot CLIP, and one learner for H-PEFT, SECA and SECA++.

The training loop (engine/train.py) calls, per task: ``begin_task`` → ``losses`` per batch →
``end_task`` → ``begin_eval`` + ``scores``. The SECA learner's switches (config ``seca.*``) select
the teacher (``kd``), the classifier (``classifier``) and replay (``replay``); H-PEFT is the learner
with ``kd=none, classifier=text`` (adapters + prompts, CE only). Losses are named in ``step`` events:
ce_text, ce_visual, reg, agg, kd, gs, ce_linear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import Config, TrainConfig
from engine.data.scenario import TaskPlan
from engine.distributed import Dist
from engine.model.adapters import AdapterSet
from engine.model.clip import Clip
from engine.seca.aggregator import Aggregator
from engine.seca.classifier import cosine_logits, hybrid_scores, logits, new_linear_head, text_scores
from engine.seca.distill import kd_loss, kd_weight, mean_pool_feature
from engine.seca.pool import AdapterPool
from engine.seca.prototypes import PrototypeBank, class_means
from engine.seca.refine import RefinementModule, reg_loss
from engine.seca.replay import GaussianBank

Events = list[tuple[str, dict]]


class ZeroShotLearner(nn.Module):
    """Frozen CLIP with the template ``model.zeroshot_template``; nothing is trained."""

    trains = False

    def __init__(self, cfg: Config, clip: Clip, plan: TaskPlan):
        super().__init__()
        self.clip, self.plan, self.template = clip, plan, cfg.model.zeroshot_template
        self.text: torch.Tensor | None = None

    def begin_task(self, task: int, loader) -> None:
        pass

    def end_task(self, task: int, loader) -> Events:
        return []

    def begin_eval(self, task: int) -> None:
        seen = self.plan.tasks[task][-1] + 1
        self.text = self.clip.encode_texts([self.template.format(n) for n in self.plan.class_names[:seen]])

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        return logits(F.normalize(self.clip.encode_image(images), dim=-1), self.text)

    def checkpoint_state(self) -> dict:
        return {}

    def restore(self, state: dict) -> None:
        pass


class SecaLearner(nn.Module):
    trains = True

    def __init__(self, cfg: Config, clip: Clip, plan: TaskPlan, device: torch.device, d: Dist = Dist()):
        super().__init__()
        self.cfg, self.s_cfg, self.plan, self.device, self.dist = cfg, cfg.seca, plan, device, d
        self.clip = clip  # a plain attribute: CLIP is frozen and stays out of state_dict()
        m = cfg.model
        self.adapters = AdapterSet(clip.vision_layers, clip.vision_width, m.adapter_dim, m.adapter_scale, m.adapter_dropout).to(device)
        self.prompts = nn.ParameterList()
        self.scale = m.logit_scale or clip.logit_scale  # training logits use CLIP's scale (≈100)
        self.tokens = clip.prompt_tokens(plan.class_names, m.prompt_length)
        kd, classifier = self.s_cfg.kd, self.s_cfg.classifier
        self.sevpr = classifier == "sevpr_hybrid"
        self.aggregator = Aggregator(clip.embed_dim, clip.vision_width).to(device) if kd == "sgakt" else None
        self.refiner = RefinementModule(clip.embed_dim).to(device) if self.sevpr else None
        self.head: nn.Linear | None = None
        self.pool = AdapterPool(self.s_cfg.pool_size) if kd in ("sgakt", "last", "mean") else None
        self.coarse = PrototypeBank()  # c_k from frozen CLIP, appended per task, never recomputed
        self.bank = PrototypeBank()  # the classifier's stored prototypes (refined ĉ or adapted centroids)
        self.gauss = GaussianBank(self.s_cfg.covariance_eps) if self.s_cfg.replay == "gaussian" else None
        self.task = -1

    # --------------------------------------------------------------------------- task geometry

    def _geometry(self, task: int) -> None:
        self.task, self.s = task, task + 1  # s: the 1-based task number of the method's equations
        self.cur = self.plan.tasks[task]
        self.offset, self.seen = self.cur[0], self.cur[-1] + 1

    @property
    def needs_all_seen_text(self) -> bool:
        """SE-VPR and replay use the current prompt on every seen class; plain CE needs only the task's."""
        return self.sevpr or self.gauss is not None

    def _prompted(self, i: int, upto: int) -> torch.Tensor:
        return self.clip.encode_prompted(self.prompts[i], self.tokens[:upto])

    def _visual_pass(self, loader, adapters: AdapterSet | None, dropout: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(unnormalised features, labels) of a task's training images with ``adapters`` (None: frozen
        CLIP), no grad; ``dropout``: with the adapters' dropout active, as the authors' code runs it."""
        feats, labels = [], []
        if adapters is not None:
            adapters.train(dropout)
        with torch.no_grad():
            for x, y, _ in loader:
                feats.append(self.clip.encode_image(x.to(self.device), adapters))
                labels.append(y.to(self.device))
        if adapters is not None:
            adapters.train(self.training)
        return torch.cat(feats).float(), torch.cat(labels)

    # --------------------------------------------------------------------------- begin

    def begin_task(self, task: int, loader) -> None:
        self._geometry(task)
        for p in self.prompts:
            p.requires_grad_(False)  # earlier prompts are frozen and kept
        m = self.cfg.model
        if m.prompt_init:
            init = self.clip.context_embedding(m.prompt_init, m.prompt_length)
        else:
            init = torch.randn(m.prompt_length, self.clip.text_width, device=self.device) * m.prompt_init_std
        self.prompts.append(nn.Parameter(init))
        self.old_text = None  # S_y^(i) for i < s: the earlier prompts on the task's classes, once per task
        if task and self.aggregator is not None:
            with torch.no_grad():
                self.old_text = torch.stack([self.clip.encode_prompted(self.prompts[i], self.tokens[self.offset : self.seen])
                                             for i in range(task)])
        if self.s_cfg.classifier == "linear":
            self.head = new_linear_head(self.clip.embed_dim, len(self.cur)).to(self.device)
        if self.sevpr or self.s_cfg.classifier == "centroid_frozen":
            feats, labels = self._visual_pass(loader, None)
            self.coarse.append(self.cur, class_means(feats, labels, self.cur))
        self.teacher_cache = None
        if task and self.s_cfg.kd != "none" and self.s_cfg.cache_teacher_features and not self.s_cfg.authors_dropout:
            self.teacher_cache = self._teacher_inputs_for_loader(loader, len(loader.dataset))
        if self.pool is not None:
            self.pool.reset_utility()
            self.relevance_sum = torch.zeros(len(self.cur), len(self.pool), device=self.device)
            self.relevance_n = torch.zeros(len(self.cur), device=self.device)

    def _teacher_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """What the teacher is built from, per image: the pool's normalised CLS tokens [B, P, width],
        or frozen CLIP's normalised feature [B, 1, D] for ``kd: clip``. The snapshots' dropout is off
        (the cacheable default) or, with ``seca.authors_dropout``, on while training as in the authors' code."""
        with torch.no_grad():
            if self.s_cfg.kd == "clip":
                return F.normalize(self.clip.encode_image(x), dim=-1).unsqueeze(1).float()
            dropout = self.s_cfg.authors_dropout and self.training
            tokens = []
            for p in self.pool.members:
                p.train(dropout)
                tokens.append(F.normalize(self.clip.image_tokens(x, p), dim=-1))
                p.eval()
            return torch.stack(tokens, 1).float()

    def _teacher_inputs_for_loader(self, loader, n: int) -> torch.Tensor:
        """Each training image's teacher inputs, once per task: no augmentation and frozen snapshots
        make them the same in every epoch (``seca.cache_teacher_features``)."""
        cache = None
        for x, _, positions in loader:
            inputs = self._teacher_inputs(x.to(self.device))
            if cache is None:
                cache = torch.zeros(n, *inputs.shape[1:], device=self.device)
            cache[positions.to(self.device)] = inputs
        return cache

    # --------------------------------------------------------------------------- train

    def param_groups(self, cfg: TrainConfig) -> list[dict]:
        groups = [{"params": list(self.adapters.parameters()), "lr": cfg.lr},
                  {"params": [self.prompts[-1]], "lr": cfg.prompt_lr}]
        for module in (self.aggregator, self.refiner, self.head):
            if module is not None:
                groups.append({"params": list(module.parameters()), "lr": cfg.lr})
        return groups

    def data_parallel(self) -> nn.Module:
        """This task's trainable modules under DDP when there are several ranks (built per task: each
        task adds a prompt); otherwise the learner itself. Calling it returns :meth:`losses`."""
        if not self.dist.enabled:
            return self
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(self, device_ids=ids, find_unused_parameters=True)

    def forward(self, images: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.losses(images, labels, positions)

    def losses(self, images: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every loss term of seca-method.md §5 that this configuration and task use, by name."""
        s_cfg = self.s_cfg
        f_raw = self.clip.encode_image(images, self.adapters)
        f = F.normalize(f_raw, dim=-1)
        y = labels - self.offset  # CE terms are over the current task's classes
        lo = 0 if self.needs_all_seen_text else self.offset
        text = self.clip.encode_prompted(self.prompts[-1], self.tokens[lo : self.seen])  # t^(s), with grad
        t_cur = text[self.offset - lo :]
        out = {"ce_text": F.cross_entropy(logits(f, t_cur, self.scale), y)}
        refined = None
        if self.sevpr:
            refined, _ = self.refiner(text, self.coarse.vectors[: self.seen])
            out["ce_visual"] = F.cross_entropy(logits(f, refined[self.offset :], self.scale), y)
            if self.task:
                out["reg"] = reg_loss(self.bank.vectors[: self.offset], refined[: self.offset])
        if self.head is not None:
            out["ce_linear"] = F.cross_entropy(cosine_logits(f, self.head.weight, self.scale), y)
        if self.task and s_cfg.kd != "none":
            out.update(self._distillation(images, f, labels, text[labels - lo], t_cur, positions))
        if self.task and self.gauss is not None:
            out["gs"] = self._replay_loss(f_raw, labels, text, refined)
        return out

    def _distillation(self, images, f, labels, t_label, t_cur, positions) -> dict[str, torch.Tensor]:
        """SG-AKT (or an ablation teacher) → L_kd with β = s − 1; for SG-AKT also L_agg and U's update."""
        inputs = self.teacher_cache[positions] if self.teacher_cache is not None else self._teacher_inputs(images)
        out = {}
        kd, t_fixed = self.s_cfg.kd, t_cur.detach()
        if kd == "clip":
            teacher = inputs[:, 0]
        elif kd == "last":
            teacher = F.normalize(self.clip.project_tokens(inputs[:, -1]), dim=-1)
        elif kd == "mean":
            teacher = F.normalize(self.clip.project_tokens(mean_pool_feature(inputs)), dim=-1)
        else:
            # S_y^(i): the label's text under every prompt; the current prompt's keeps its gradient
            y = labels - self.offset
            S = torch.cat([self.old_text[:, y].transpose(0, 1), t_label.unsqueeze(1)], dim=1)
            o, w = self.aggregator(S, inputs, self.s_cfg.relevance)
            f_agg = F.normalize(self.clip.project_tokens(o), dim=-1)
            # the prompt reaches L_agg through the queries S only: the logits' text is detached (§3)
            out["agg"] = F.cross_entropy(logits(f_agg, t_fixed, self.scale), y)
            teacher = f_agg  # kd_loss detaches its teacher
            self._track_relevance(w.detach(), y)
        k = self.s_cfg.kd_scale
        out["kd"] = kd_weight(self.s) * kd_loss(logits(f, t_fixed, k), logits(teacher, t_fixed, k))
        return out

    def _track_relevance(self, w: torch.Tensor, y: torch.Tensor) -> None:
        # every rank must prune the same member: U follows the mean relevance over all ranks
        self.pool.update_utility(self.dist.mean(w.mean(dim=0)), self.s_cfg.utility_momentum)
        self.relevance_sum.index_add_(0, y, w.float())
        self.relevance_n.index_add_(0, y, torch.ones_like(y, dtype=torch.float))

    def _replay_loss(self, f_raw, labels, text, refined) -> torch.Tensor:
        """L_gs (SECA++): Gaussian samples of old classes + the batch's detached features, over all seen classes."""
        sampled, old_labels = self.gauss.sample(range(self.offset), self.s_cfg.replay_per_class)
        z = F.normalize(torch.cat([sampled.to(f_raw.dtype), f_raw.detach()]), dim=-1)
        target = torch.cat([old_labels.to(labels.device), labels])
        loss = F.cross_entropy(logits(z, text, self.scale), target)
        if refined is not None:
            loss = loss + F.cross_entropy(logits(z, refined, self.scale), target)
        return loss

    # --------------------------------------------------------------------------- end

    def end_task(self, task: int, loader) -> Events:
        events: Events = []
        names = self.plan.class_names
        with torch.no_grad():
            text = self._prompted(task, self.seen)
            if self.sevpr:
                refined, affinity = self.refiner(text, self.coarse.vectors[: self.seen])
                self.bank.store_refined(range(self.seen), refined, "replace" if self.gauss is not None else "append")
                events.append(("affinity", {"task": task, "labels": names[: self.seen], "values": affinity.tolist()}))
            if self.head is not None:  # the linear ablation's rows, normalised, stored and frozen
                self.bank.append(self.cur, F.normalize(self.head.weight, dim=-1))
                self.head = None
            if self.s_cfg.classifier == "centroid_adapted" or self.gauss is not None:
                feats, labels = self._visual_pass(loader, self.adapters, self.s_cfg.authors_dropout)
                if self.gauss is not None:
                    self.gauss.add(self.cur, feats.double(), labels)
                if self.s_cfg.classifier == "centroid_adapted":
                    self.bank.append(self.cur, class_means(feats, labels, self.cur))
        if self.pool is not None:
            if task and self.s_cfg.kd == "sgakt":
                self.dist.sum(self.relevance_sum)  # every rank saw part of the task's images
                self.dist.sum(self.relevance_n)
                if self.relevance_n.sum() > 0:  # an untrained task (train.epochs: 0) has no relevance to report
                    mean = self.relevance_sum / self.relevance_n.clamp_min(1).unsqueeze(1)
                    events.append(("relevance", {"task": task, "rows": names[self.offset : self.seen], "cols": list(self.pool.labels),
                                                 "values": mean.tolist(), "utility": self.pool.utility.tolist()}))
            pruned = self.pool.add(self.adapters.snapshot(), f"task {task}", self.s_cfg.prune)  # 0-based, as in events
            events.append(("pool", {"task": task, "kept": list(self.pool.labels), "pruned": pruned}))
        self.teacher_cache = None
        return events

    # --------------------------------------------------------------------------- predict

    def begin_eval(self, task: int) -> None:
        self._geometry(task)
        with torch.no_grad():
            self.eval_text = torch.stack([self._prompted(i, self.seen) for i in range(task + 1)])

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """Scores over all seen classes (seca-method.md §6). ``text``: P_T alone; the others are the
        hybrid fusion·P_T + (1 − fusion)·P_V with, as prototypes, frozen-CLIP class means
        (``centroid_frozen``), adapted class means (``centroid_adapted``), the linear heads' stored
        normalised rows (``linear``) or the refined ĉ (``sevpr_hybrid``). The hybrid subtracts each
        sample's own max, not the batch's (documented deviation: a prediction never depends on its batch)."""
        f = F.normalize(self.clip.encode_image(images, self.adapters), dim=-1)
        c, k = self.s_cfg, self.s_cfg.infer_scale
        if c.classifier == "text":
            return text_scores(f, self.eval_text, k)
        protos = self.coarse.vectors if c.classifier == "centroid_frozen" else self.bank.vectors
        return hybrid_scores(f, self.eval_text, protos[: self.seen], k, c.fusion)

    # --------------------------------------------------------------------------- checkpoint

    def checkpoint_state(self) -> dict:
        return {
            "adapters": self.adapters.state_dict(),
            "prompts": [p.detach().cpu() for p in self.prompts],
            "aggregator": self.aggregator.state_dict() if self.aggregator else None,
            "refiner": self.refiner.state_dict() if self.refiner else None,
            "pool": self.pool.state_dict() if self.pool else None,
            "coarse": self.coarse.state_dict(),
            "bank": self.bank.state_dict(),
            "gauss": self.gauss.state_dict() if self.gauss else None,
        }

    def restore(self, state: dict) -> None:
        self.adapters.load_state_dict(state["adapters"])
        self.prompts = nn.ParameterList(nn.Parameter(p.to(self.device), requires_grad=False) for p in state["prompts"])
        for name in ("aggregator", "refiner"):
            if getattr(self, name) is not None:
                getattr(self, name).load_state_dict(state[name])
        if self.pool is not None:
            self.pool.load_state_dict(state["pool"], lambda: self.adapters.snapshot())
        self.coarse.load_state_dict(state["coarse"], self.device)
        self.bank.load_state_dict(state["bank"], self.device)
        if self.gauss is not None:
            self.gauss.load_state_dict(state["gauss"], self.device)


def build_learner(cfg: Config, clip: Clip, plan: TaskPlan, device: torch.device, d: Dist = Dist()) -> nn.Module:
    if cfg.method == "zeroshot":
        return ZeroShotLearner(cfg, clip, plan)
    return SecaLearner(cfg, clip, plan, device, d)
