"""The SECA learner in-process on the tiny random CLIP: where each loss sends its gradient, what must
never move, teacher caching, the prototype banks and the relevance/utility bookkeeping.

The learner is built the way ``Trainer`` builds it (``load_clip``, ``build_plan``, ``build_learner``)
and trained by the same steps (Adam over ``param_groups``, ``losses`` summed) on the engine's own
batches of random uint8 images: 3 tasks × 2 classes, 6 images per class, about a second per test.
"""
from functools import cache

import pytest
import torch
import torch.nn.functional as F

from engine.config import from_flat
from engine.data.loader import Preprocess, TaskImages, batches
from engine.data.scenario import build_plan
from engine.learner import build_learner
from engine.model.clip import load_clip
from engine.seca.prototypes import class_means

CPU = torch.device("cpu")
CLASSES = [f"class {c}" for c in "abcdef"]
PER_CLASS = 6


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is several times faster than contending for busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_cfg(method="seca++", overrides=(), **seca):
    flat = {"method": method, "model.name": "seca-tiny", "model.pretrained": "none", "model.adapter_dropout": 0.0,
            "scenario.n_tasks": 3, "scenario.class_order": list(range(len(CLASSES))),
            "train.lr": 1e-2, "train.prompt_lr": 1e-2, "seca.pool_size": 2}
    flat.update(overrides)
    flat.update({f"seca.{k}": v for k, v in seca.items()})
    return from_flat(flat)


# adapters that move far in a few steps, for tests that need clearly different snapshots
BIG_STEPS = {"train.lr": 0.05, "model.adapter_scale": 1.0}


def build(cfg, seed=0):
    preprocess()  # made once, before seeding: its CLIP draws random weights, which must not depend on test order
    torch.manual_seed(seed)
    clip = load_clip(cfg.model, CPU)
    plan = build_plan(cfg.scenario, CLASSES)
    return build_learner(cfg, clip, plan, CPU)


@cache
def task_data(task):
    """A task's decoded images: a class-specific pattern plus noise, the same in every call."""
    labels = torch.arange(2 * task, 2 * task + 2).repeat_interleave(PER_CLASS)
    patterns = torch.randint(0, 256, (len(CLASSES), 3, 32, 32), generator=torch.Generator().manual_seed(7))
    noise = torch.randint(-40, 41, (len(labels), 3, 32, 32), generator=torch.Generator().manual_seed(100 + task))
    return TaskImages((patterns[labels] + noise).clamp(0, 255).to(torch.uint8), labels)


@cache
def preprocess():
    return Preprocess(load_clip(make_cfg().model, CPU).preprocess)


def feature_loader(task):
    """Trainer's feature passes: ordered batches of eval_batch_size."""
    return batches(task_data(task), preprocess(), 8)


def train_loader(task):
    return batches(task_data(task), preprocess(), 4, shuffle=True, seed=task)


def images_of(task):
    """(normalised images, labels) of a whole task, as the batches deliver them."""
    data = task_data(task)
    return preprocess().normalize(data.images), data.labels


def optimizer(learner):
    t = learner.cfg.train
    return torch.optim.Adam(learner.param_groups(t), weight_decay=t.weight_decay)


def train_task(learner, task, on_step=None, after_begin=None):
    """One task as Trainer runs it (1 epoch); returns (each step's losses as floats, end_task events)."""
    learner.begin_task(task, feature_loader(task))
    if after_begin:
        after_begin()
    opt, history = optimizer(learner), []
    learner.train()
    for images, labels, positions in train_loader(task):
        losses = learner.losses(images, labels, positions)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
        if on_step:
            on_step(images, labels)
    learner.eval()
    return history, learner.end_task(task, feature_loader(task))


def param_sets(learner):
    """The learner's parameters by role; the frozen ones must never see a gradient."""
    return {
        "adapters": list(learner.adapters.parameters()),
        "prompt": [learner.prompts[-1]],
        "aggregator": list(learner.aggregator.parameters()),
        "refiner": list(learner.refiner.parameters()),
        "old prompts": list(learner.prompts[:-1]),
        "pool": [p for m in learner.pool.members for p in m.parameters()],
        "clip": list(learner.clip.model.parameters()),
    }


def reached(learner):
    return {name for name, ps in param_sets(learner).items()
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in ps)}


def zero_grads(learner):
    for ps in param_sets(learner).values():
        for p in ps:
            p.grad = None


@pytest.fixture
def third_task():
    """SECA++ (kd=sgakt, classifier=sevpr_hybrid, replay=gaussian) trained on tasks 1-2, starting
    task s = 3 with a full pool of 2, in training mode."""
    learner = build(make_cfg())
    for task in range(2):
        train_task(learner, task)
    learner.begin_task(2, feature_loader(2))
    learner.train()
    return learner


# ------------------------------------------------------------------------------ gradient flow

EXPECTED = {
    "ce_text": {"adapters", "prompt"},
    "ce_visual": {"adapters", "refiner", "prompt"},
    "reg": {"refiner", "prompt"},
    "agg": {"aggregator", "prompt"},
    "kd": {"adapters"},
    "gs": {"refiner", "prompt"},
}


def test_each_loss_reaches_only_its_modules(third_task):
    """Each named loss, backpropagated alone, reaches exactly the modules of seca-method.md §3-7;
    frozen parts get no gradient at all."""
    learner = third_task
    images, labels, positions = next(iter(train_loader(2)))
    losses = learner.losses(images, labels, positions)
    assert set(losses) == set(EXPECTED)
    for name, loss in losses.items():
        zero_grads(learner)
        loss.backward(retain_graph=True)
        assert reached(learner) == EXPECTED[name], name
        frozen = param_sets(learner)["old prompts"] + param_sets(learner)["pool"] + param_sets(learner)["clip"]
        assert all(p.grad is None and not p.requires_grad for p in frozen), name


def test_agg_reaches_the_prompt_only_through_the_queries():
    """At s = 2 the pool has one member: its relevance is 1 whatever the queries say, so L_agg can
    reach the current prompt only if the text of its logits were left undetached (it must not be)."""
    learner = build(make_cfg())
    train_task(learner, 0)
    learner.begin_task(1, feature_loader(1))
    learner.train()
    images, labels, positions = next(iter(train_loader(1)))
    zero_grads(learner)
    learner.losses(images, labels, positions)["agg"].backward()
    assert reached(learner) == {"aggregator"}
    agg = learner.aggregator
    assert agg.w_q.weight.grad.abs().sum() == 0 and agg.ln_o.weight.grad.abs().sum() > 0


TRAINABLE = ("adapters", "prompt", "aggregator", "refiner")


def test_frozen_parts_stay_bit_identical_under_adam(third_task):
    """A few real optimizer steps on the total loss move every trainable module and nothing else."""
    learner = third_task
    sets = param_sets(learner)
    in_optimizer = [id(p) for g in learner.param_groups(learner.cfg.train) for p in g["params"]]
    assert sorted(in_optimizer) == sorted(id(p) for name in TRAINABLE for p in sets[name])
    before = {name: [p.detach().clone() for p in ps] for name, ps in sets.items()}
    buffers = [b.clone() for b in learner.clip.model.buffers()]
    banks = [learner.coarse.vectors.clone(), learner.bank.vectors.clone(), learner.gauss.means.clone()]
    opt = optimizer(learner)
    for images, labels, positions in list(train_loader(2))[:3]:
        opt.zero_grad(set_to_none=True)
        sum(learner.losses(images, labels, positions).values()).backward()
        opt.step()
    moved = {name for name, ps in sets.items() if not all(torch.equal(a, p) for a, p in zip(before[name], ps))}
    assert moved == set(TRAINABLE)
    assert all(torch.equal(a, b) for a, b in zip(buffers, learner.clip.model.buffers()))
    assert all(torch.equal(a, b) for a, b in zip(banks, [learner.coarse.vectors, learner.bank.vectors, learner.gauss.means]))


# ------------------------------------------------------------------------------ ablation teachers and β


@pytest.mark.parametrize("kd", ["clip", "last", "mean"])
@pytest.mark.parametrize("task", [1, 2])
def test_ablation_teachers_and_beta(kd, task):
    """L_kd = β·KL(p_teacher ‖ p_student) with β = s − 1, logits 20·f·t^(s) over the task's classes;
    teachers rebuilt here from CLIP's own calls: frozen CLIP, the latest snapshot, the pool's mean token."""
    learner = build(make_cfg(kd=kd, overrides=BIG_STEPS))  # a student well away from its teachers
    for t in range(task):
        train_task(learner, t)
    learner.begin_task(task, feature_loader(task))
    learner.train()
    opt = optimizer(learner)
    *steps, (images, labels, positions) = train_loader(task)
    for batch in steps:  # the student leaves the snapshot it starts from (the `last` teacher)
        opt.zero_grad()
        sum(learner.losses(*batch).values()).backward()
        opt.step()
    clip = learner.clip
    with torch.no_grad():
        f = F.normalize(clip.encode_image(images, learner.adapters), dim=-1)
        t = clip.encode_prompted(learner.prompts[-1], learner.tokens[2 * task : 2 * task + 2])
        if kd == "clip":
            teacher = clip.encode_image(images)
        else:
            tokens = torch.stack([F.normalize(clip.image_tokens(images, m), dim=-1) for m in learner.pool.members])
            teacher = clip.project_tokens(tokens[-1] if kd == "last" else tokens.mean(0))
        p_teacher = (20 * F.normalize(teacher, dim=-1) @ t.T).double().softmax(-1)
        log_student = (20 * f @ t.T).double().log_softmax(-1)
        kl = (p_teacher * (p_teacher.log() - log_student)).sum(-1).mean()
    # small (the random text tower barely separates two names), so float32 rounding is ~0.3% of it
    assert kl > 1e-6
    kd_loss = learner.losses(images, labels, positions)["kd"]
    assert kd_loss.item() == pytest.approx(task * kl.item(), rel=2e-2)  # β = s − 1 = task


# ------------------------------------------------------------------------------ teacher cache


@pytest.mark.parametrize("kd", ["sgakt", "clip", "last", "mean"])
def test_cached_teacher_inputs_give_the_same_losses(kd):
    """With dropout off, caching the teacher's inputs once per task changes nothing: the same seed and
    batches give the same losses at every step of tasks 2 and 3 (the cache is read by position)."""
    histories = []
    for cache in (True, False):
        learner = build(make_cfg(kd=kd, cache_teacher_features=cache))
        history = []
        for task in range(3):
            def cache_in_use(task=task, cache=cache, learner=learner):
                assert (learner.teacher_cache is not None) == (cache and task > 0)

            history += train_task(learner, task, after_begin=cache_in_use)[0]
        histories.append(history)
    cached, recomputed = histories
    assert [sorted(h) for h in cached] == [sorted(h) for h in recomputed]
    assert "kd" in cached[-1]
    for a, b in zip(cached, recomputed):  # equal up to the last bits of batch-size-dependent matmuls
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("authors", [False, True])
def test_authors_dropout_switch(authors):
    """seca.authors_dropout: the pool snapshots run with the adapters' dropout on while training
    (recomputed every step, never cached) and SECA++'s statistics pass with dropout on, as the
    authors' code does; off (default), both are deterministic and the pool features are cached."""
    learner = build(make_cfg("seca++", {"model.adapter_dropout": 0.5, **BIG_STEPS}, authors_dropout=authors))
    train_task(learner, 0)
    adapted, labels = features_of(learner, 0, learner.adapters)  # eval mode: dropout off
    clean_mean = adapted[labels == 0].mean(0)
    stats_mean = learner.gauss.stats(0)[0].float()
    assert torch.allclose(stats_mean, clean_mean, atol=1e-5) != authors
    learner.begin_task(1, feature_loader(1))
    assert (learner.teacher_cache is None) == authors
    images = images_of(1)[0][:4]
    learner.train()
    first, second = learner._teacher_inputs(images), learner._teacher_inputs(images)
    assert torch.equal(first, second) != authors  # fresh dropout masks at every call
    assert not any(m.training for m in learner.pool.members)  # the snapshots go back to eval mode
    learner.eval()
    assert torch.equal(learner._teacher_inputs(images), learner._teacher_inputs(images))


# ------------------------------------------------------------------------------ prototypes


def refined_now(learner):
    """ĉ rebuilt from the current prompt on every seen class, as end_task does."""
    with torch.no_grad():
        text = learner.clip.encode_prompted(learner.prompts[-1], learner.tokens[: learner.seen])
        return learner.refiner(text, learner.coarse.vectors[: learner.seen])[0]


@pytest.mark.parametrize("method", ["seca", "seca++"])
def test_seca_appends_and_seca_plus_plus_replaces_the_bank(method):
    learner = build(make_cfg(method))
    train_task(learner, 0)
    after_first = learner.bank.vectors.clone()
    train_task(learner, 1)
    bank = learner.bank
    assert bank.classes == [0, 1, 2, 3] and bank.vectors.shape == (4, 32)
    refined = refined_now(learner)
    torch.testing.assert_close(bank.vectors[2:], refined[2:], rtol=0, atol=0)
    if method == "seca":  # the old classes keep the prototypes stored when they were learnt
        assert torch.equal(bank.vectors[:2], after_first)
    else:  # SECA++ re-stores every class with the current refinement
        torch.testing.assert_close(bank.vectors[:2], refined[:2], rtol=0, atol=0)
        assert not torch.allclose(bank.vectors[:2], after_first, atol=1e-4)


def features_of(learner, task, adapters):
    images, labels = images_of(task)
    with torch.no_grad():
        feats = learner.clip.encode_image(images, adapters)
    return feats, labels


def test_coarse_prototypes_use_frozen_clip_and_replay_the_adapted_features():
    learner = build(make_cfg())
    train_task(learner, 0)
    train_task(learner, 1)
    for task in range(2):
        frozen, labels = features_of(learner, task, None)
        torch.testing.assert_close(learner.coarse.vectors[2 * task : 2 * task + 2],
                                   class_means(frozen, labels, [2 * task, 2 * task + 1]))
    # the last task's replay statistics: unnormalised features with the adapters as they ended it
    adapted, labels = features_of(learner, 1, learner.adapters)
    for c in (2, 3):
        mean, cov = learner.gauss.stats(c)
        torch.testing.assert_close(mean.float(), adapted[labels == c].mean(0), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(cov, torch.cov(adapted[labels == c].double().T) + 1e-4 * torch.eye(32, dtype=torch.float64),
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("classifier", ["centroid_frozen", "centroid_adapted"])
def test_centroid_classifiers_store_what_they_score_with(classifier):
    learner = build(make_cfg("seca", classifier=classifier))
    for task in range(2):
        train_task(learner, task)
        feats, labels = features_of(learner, task, learner.adapters if classifier == "centroid_adapted" else None)
        classes = [2 * task, 2 * task + 1]
        store = learner.bank if classifier == "centroid_adapted" else learner.coarse
        torch.testing.assert_close(store.vectors[classes[0] :], class_means(feats, labels, classes), rtol=1e-5, atol=1e-5)
    learner.begin_eval(1)
    assert learner.scores(images_of(1)[0][:5]).shape == (5, 4)


def test_linear_ablation_heads_are_per_task_and_stored_rows_never_move():
    """`linear` (seca-method.md §6): each task trains a new bias-free head over its own classes by CE on
    cosine logits; at its end the rows are normalised, stored and frozen; weight decay never reaches
    them (a shared head in Adam decays the old rows towards zero within a task)."""
    learner = build(make_cfg("seca", {"train.weight_decay": 0.5}, classifier="linear"))
    train_task(learner, 0)
    first = learner.bank.vectors.clone()
    assert learner.bank.classes == [0, 1] and learner.head is None
    torch.testing.assert_close(first.norm(dim=-1), torch.ones(2))

    def fresh_head():
        assert learner.head.weight.shape == (2, 32) and learner.head.bias is None
        assert learner.head.weight.requires_grad and all(p is not learner.bank.vectors for p in learner.head.parameters())

    history, _ = train_task(learner, 1, after_begin=fresh_head)
    assert "ce_linear" in history[0]
    assert torch.equal(learner.bank.vectors[:2], first)  # bit-identical across the later task
    assert learner.bank.classes == [0, 1, 2, 3]
    # the hybrid with the stored rows in place of ĉ, written out by hand: 0.5·P_T + 0.5·exp(20·f·w − m')
    learner.begin_eval(1)
    images = images_of(1)[0][:5]
    f = F.normalize(learner.clip.encode_image(images, learner.adapters), dim=-1)
    lt = 20.0 * torch.einsum("bd,skd->sbk", f, learner.eval_text)
    p_t = (lt - lt.amax(dim=(0, 2), keepdim=True)).exp().mean(0)
    lv = 20.0 * f @ learner.bank.vectors.T
    p_v = (lv - lv.amax(dim=1, keepdim=True)).exp()
    torch.testing.assert_close(learner.scores(images), 0.5 * p_t + 0.5 * p_v)


# ------------------------------------------------------------------------------ relevance and utility


def test_relevance_and_utility_follow_the_aggregators_weights():
    """The relevance event is the per-class mean of every image's w over the task; U starts uniform
    and is 0.5·U + 0.5·mean_batch(w) per batch once the pool is full; pruning drops argmin U."""
    # large adapter steps make the two snapshots, and so the classes' relevance, clearly different
    learner = build(make_cfg("seca", BIG_STEPS))
    for task in range(2):
        train_task(learner, task)
    seen_w = []
    hook = learner.aggregator.register_forward_hook(lambda m, args, out: seen_w.append(out[1].detach().clone()))
    batches_labels = []
    _, events = train_task(learner, 2, on_step=lambda images, labels: batches_labels.append(labels))
    hook.remove()
    relevance = next(body for kind, body in events if kind == "relevance")
    pool = next(body for kind, body in events if kind == "pool")
    assert relevance["rows"] == ["class e", "class f"] and relevance["cols"] == ["task 0", "task 1"]
    w, y = torch.cat(seen_w), torch.cat(batches_labels)
    expected = torch.stack([w[y == c].mean(0) for c in (4, 5)])
    assert (expected[0] - expected[1]).abs().max() > 0.01  # far above the tolerance below
    torch.testing.assert_close(torch.tensor(relevance["values"]), expected)
    u = torch.full((2,), 0.5, dtype=torch.float64)
    for batch_w in seen_w:
        u = 0.5 * u + 0.5 * batch_w.mean(0).double()
    torch.testing.assert_close(torch.tensor(relevance["utility"], dtype=torch.float64), u)
    dropped = relevance["cols"][int(u.argmin())]
    assert pool["pruned"] == dropped and pool["kept"] == [c for c in relevance["cols"] if c != dropped] + ["task 2"]


def test_an_untrained_task_reports_no_relevance():
    """train.epochs: 0 still ends each task: the pool grows, but there is no relevance to average."""
    learner = build(make_cfg("seca"))
    train_task(learner, 0)
    learner.begin_task(1, feature_loader(1))
    events = learner.end_task(1, feature_loader(1))
    assert [kind for kind, _ in events] == ["affinity", "pool"]
    assert events[-1][1]["kept"] == ["task 0", "task 1"]
