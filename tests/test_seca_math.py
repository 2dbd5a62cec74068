"""One test per equation of SECA's math (seca-method.md §3-7), on small hand-made tensors."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.model.adapters import AdapterSet
from engine.seca.aggregator import Aggregator, relevance_weights
from engine.seca.classifier import (
    cosine_logits,
    hybrid_scores,
    logits,
    text_scores,
    visual_scores,
)
from engine.seca.distill import kd_loss, kd_weight, mean_pool_feature
from engine.seca.pool import AdapterPool
from engine.seca.prototypes import PrototypeBank, class_means
from engine.seca.refine import RefinementModule, affinity, reg_loss
from engine.seca.replay import GaussianBank


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ------------------------------------------------------------------------------ §3 aggregator


@pytest.mark.parametrize("mode", ["per_query", "pooled"])
def test_relevance_is_a_distribution_per_image(mode):
    w = relevance_weights(torch.randn(4, 3, 8), torch.randn(4, 5, 8), mode)
    assert w.shape == (4, 5)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=-1), torch.ones(4))


def test_per_query_hand_computed_2x2():
    # d = 4, so scores are q·k / 2: query 1 scores the two members (2, 0), query 2 scores (0, 0).
    q = torch.tensor([[[4.0, 0, 0, 0], [0, 0, 0, 0]]])
    k = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])
    a1 = math.exp(2) / (math.exp(2) + 1)  # softmax(2, 0)[0]
    expected = torch.tensor([[(a1 + 0.5) / 2, ((1 - a1) + 0.5) / 2]])
    torch.testing.assert_close(relevance_weights(q, k, "per_query"), expected)
    # The paper's reading averages the scores (1, 0) first: one softmax, a different answer.
    pooled = torch.tensor([[math.exp(1) / (math.exp(1) + 1), 1 / (math.exp(1) + 1)]])
    torch.testing.assert_close(relevance_weights(q, k, "pooled"), pooled)
    assert not torch.allclose(expected, pooled, atol=1e-3)


def test_relevance_readings_agree_for_one_query():
    q, k = torch.randn(3, 1, 8), torch.randn(3, 4, 8)
    torch.testing.assert_close(relevance_weights(q, k, "per_query"), relevance_weights(q, k, "pooled"))


def test_aggregator_output_mixes_normalised_values():
    agg = Aggregator(text_dim=6, vision_dim=10)
    S, V = torch.randn(2, 3, 6, requires_grad=True), F.normalize(torch.randn(2, 4, 10), dim=-1)
    for mode in ("per_query", "pooled"):
        o, w = agg(S, V, relevance=mode)
        v = agg.ln_k(V)
        q, k = agg.w_q(agg.ln_q(S)), agg.w_k(v)
        scores = q @ k.transpose(1, 2) / math.sqrt(10)
        A = scores.softmax(-1) if mode == "per_query" else scores.mean(1, keepdim=True).softmax(-1)
        mixed = (A @ v).mean(dim=1)  # (1/s) Σ_i Σ_p A_{i,p} v_p
        torch.testing.assert_close(o, agg.ln_o(mixed))
        torch.testing.assert_close(w, A.mean(dim=1))
    (o * torch.randn_like(o)).sum().backward()  # o.sum() would be constant: LN_o's output sums to D·β
    assert S.grad is not None and S.grad.abs().sum() > 0  # the current prompt's S keeps its gradient


# ------------------------------------------------------------------------------ §3 distillation


def test_kd_is_kl_teacher_to_student():
    student = torch.randn(3, 5, requires_grad=True)
    teacher = torch.randn(3, 5, requires_grad=True)
    loss = kd_loss(student, teacher)
    p_t, p_s = teacher.softmax(-1), student.softmax(-1)
    expected = (p_t * (p_t.log() - p_s.log())).sum(-1).mean()  # KL(p_t ‖ p_s), batch mean
    torch.testing.assert_close(loss, expected)
    assert loss > 0
    loss.backward()
    assert teacher.grad is None
    assert student.grad.abs().sum() > 0


def test_kd_is_zero_when_teacher_equals_student():
    logits = torch.randn(4, 6)
    assert kd_loss(logits, logits.clone()).abs() < 1e-6


def test_kd_weight_is_task_number_minus_one():
    assert [kd_weight(s) for s in (1, 2, 3, 10)] == [0.0, 1.0, 2.0, 9.0]
    with pytest.raises(ValueError):
        kd_weight(0)


def test_mean_pool_feature_is_uniform_average():
    V = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    torch.testing.assert_close(mean_pool_feature(V), torch.tensor([[2 / 3, 2 / 3]]))


# ------------------------------------------------------------------------------ §3 pool


def _snapshot(value: float) -> AdapterSet:
    a = AdapterSet(layers=1, width=4, dim=2, scale=0.1, dropout=0.1)
    with torch.no_grad():
        a.blocks[0].up.weight.fill_(value)
    return a.snapshot()


@pytest.mark.parametrize("prune, dropped, kept", [("min", "task 2", ["task 1", "task 3", "task 4"]),
                                                  ("max", "task 3", ["task 1", "task 2", "task 4"])])
def test_pool_utility_and_pruning_script(prune, dropped, kept):
    pool = AdapterPool(capacity=3)
    assert pool.add(_snapshot(1), "task 1", prune) is None
    assert pool.add(_snapshot(2), "task 2", prune) is None
    pool.reset_utility()
    pool.update_utility(torch.tensor([0.9, 0.1]))  # not full yet: ignored
    torch.testing.assert_close(pool.utility, torch.full((2,), 0.5, dtype=torch.float64))
    assert pool.add(_snapshot(3), "task 3", prune) is None
    pool.reset_utility()
    torch.testing.assert_close(pool.utility, torch.full((3,), 1 / 3, dtype=torch.float64))
    pool.update_utility(torch.tensor([0.6, 0.3, 0.1]), momentum=0.5)
    u = 0.5 * torch.full((3,), 1 / 3, dtype=torch.float64) + 0.5 * torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    torch.testing.assert_close(pool.utility, u)
    pool.update_utility(torch.tensor([0.1, 0.2, 0.7]), momentum=0.5)
    u = 0.5 * u + 0.5 * torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)  # (0.283, 0.258, 0.458)
    torch.testing.assert_close(pool.utility, u)
    assert pool.add(_snapshot(4), "task 4", prune) == dropped
    assert pool.labels == kept
    assert [float(m.blocks[0].up.weight[0, 0]) for m in pool.members] == [float(t[-1]) for t in kept]
    torch.testing.assert_close(pool.utility, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_pool_momentum_keeps_that_share_of_the_old_utility():
    pool = AdapterPool(capacity=2)
    pool.add(_snapshot(1), "task 1")
    pool.add(_snapshot(2), "task 2")
    pool.update_utility(torch.tensor([1.0, 0.0]), momentum=0.75)
    torch.testing.assert_close(pool.utility, torch.tensor([0.625, 0.375], dtype=torch.float64))


def test_pool_state_dict_round_trip():
    pool = AdapterPool(capacity=2)
    pool.add(_snapshot(1), "task 1")
    pool.add(_snapshot(2), "task 2")
    pool.update_utility(torch.tensor([0.8, 0.2]))
    restored = AdapterPool(capacity=5)
    restored.load_state_dict(pool.state_dict(), lambda: AdapterSet(layers=1, width=4, dim=2, scale=0.1, dropout=0.1))
    assert restored.capacity == 2 and restored.labels == ["task 1", "task 2"]
    torch.testing.assert_close(restored.utility, pool.utility)
    for a, b in zip(restored.members, pool.members):
        torch.testing.assert_close(a.state_dict(), b.state_dict())
        assert not a.training and not any(p.requires_grad for p in a.parameters())


# ------------------------------------------------------------------------------ §4 refinement


def test_affinity_rows_are_distributions_and_match_hand_values():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    M = affinity(z, temperature=1.0)
    torch.testing.assert_close(M.sum(-1), torch.ones(3))
    d = torch.tensor([[0.0, 1.0, 4.0], [1.0, 0.0, 5.0], [4.0, 5.0, 0.0]])  # squared distances
    torch.testing.assert_close(M, (-d).softmax(-1))
    assert affinity(torch.randn(7, 512)).sum(-1).sub(1).abs().max() < 1e-5


def _far_apart_refiner(dim: int) -> RefinementModule:
    refiner = RefinementModule(dim)
    with torch.no_grad():
        refiner.h.weight.copy_(3 * torch.eye(dim))  # distances ≫ temperature, so M = I in float32
    return refiner


def test_refinement_keeps_prototypes_of_far_apart_classes():
    dim = 512
    text = torch.eye(dim)[:5]  # orthogonal class texts: LN_t makes each a spike of norm ≈ √512
    coarse = F.normalize(torch.randn(5, dim), dim=-1)
    refiner = _far_apart_refiner(dim)
    refined, M = refiner(text, coarse)
    torch.testing.assert_close(M, torch.eye(5))
    torch.testing.assert_close(refined, F.normalize(refiner.ln_o(refiner.ln_v(coarse)), dim=-1))
    # With identity-init LayerNorms a zero-mean unit prototype is only rescaled, so it comes back as is.
    centred = F.normalize(coarse - coarse.mean(-1, keepdim=True), dim=-1)
    torch.testing.assert_close(refiner(text, centred)[0], centred, atol=1e-5, rtol=1e-5)


def test_refinement_mixes_classes_with_equal_text():
    refiner = RefinementModule(16)
    with torch.no_grad():  # LayerNorms away from identity, so each one's place in the formula matters
        for ln in (refiner.ln_t, refiner.ln_v, refiner.ln_o):
            ln.weight.uniform_(0.5, 2.0)
            ln.bias.normal_()
    text = torch.randn(3, 16)
    text[1] = text[0]  # classes 0 and 1 are the same word: their affinity rows coincide
    coarse = F.normalize(torch.randn(3, 16), dim=-1)
    refined, M = refiner(text, coarse)
    torch.testing.assert_close(M, affinity(refiner.h(refiner.ln_t(text)), 2 * math.sqrt(16)))
    torch.testing.assert_close(refined, F.normalize(refiner.ln_o(M @ refiner.ln_v(coarse)), dim=-1))
    assert not torch.allclose(M, torch.eye(3), atol=1e-3)  # the classes do mix here
    torch.testing.assert_close(refined[0], refined[1])
    torch.testing.assert_close(refined.norm(dim=-1), torch.ones(3))


def test_reg_loss_is_mean_cosine_distance_to_stored():
    stored = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    refined = torch.tensor([[1.0, 1.0], [0.0, 2.0]], requires_grad=True)
    loss = reg_loss(stored, refined)
    torch.testing.assert_close(loss, torch.tensor((1 - 1 / math.sqrt(2) + 0.0) / 2))
    loss.backward()
    assert stored.grad is None and refined.grad.abs().sum() > 0
    assert reg_loss(stored, stored.detach().clone()).abs() < 1e-6


# ------------------------------------------------------------------------------ §4 prototypes


def test_class_means_are_normalised_means_in_given_order():
    features = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 0.0], [5.0, 0.0]])
    labels = torch.tensor([7, 7, 3, 3])
    means = class_means(features, labels, [3, 7])
    torch.testing.assert_close(means, torch.tensor([[1.0, 0.0], [1 / math.sqrt(2), 1 / math.sqrt(2)]]))
    with pytest.raises(ValueError):
        class_means(features, labels, [4])


def test_prototype_bank_appends_for_seca_and_replaces_for_seca_plus_plus():
    first, second = torch.randn(2, 4), torch.randn(4, 4)
    seca, plus = PrototypeBank(), PrototypeBank()
    for bank, mode in ((seca, "append"), (plus, "replace")):
        bank.store_refined([5, 9], first, mode)
        bank.store_refined([5, 9, 1, 2], second, mode)
        assert bank.classes == [5, 9, 1, 2]
    torch.testing.assert_close(seca.vectors, torch.cat([first, second[2:]]))
    torch.testing.assert_close(plus.vectors, second)
    with pytest.raises(ValueError):
        seca.append([9], torch.randn(1, 4))
    restored = PrototypeBank()
    restored.load_state_dict(seca.state_dict())
    assert restored.classes == seca.classes
    torch.testing.assert_close(restored.vectors, seca.vectors)


# ------------------------------------------------------------------------------ §6 classifier


def _batch_max_hybrid(f, text_feats, protos, scale=20.0, fusion=0.5):
    """The authors' code: one maximum over the whole batch for each score (over [B, s·K] for P_T)."""
    lt = scale * torch.einsum("bd,skd->sbk", f, text_feats)
    p_t = (lt - lt.max()).exp().mean(0)
    lv = scale * f @ protos.T
    return fusion * p_t + (1 - fusion) * (lv - lv.max()).exp()


def test_logits_stay_float32_under_bf16_autocast():
    """Scaled logits of normalised (float32) features under autocast: the product stays float32, where
    autocast's bf16 product would round logits of tens in steps of up to 0.25."""
    f = F.normalize(torch.randn(8, 64), dim=-1)
    w = F.normalize(torch.randn(30, 64), dim=-1)
    exact = 100.0 * f.double() @ w.double().T
    with torch.autocast("cpu", dtype=torch.bfloat16):
        naive = 100.0 * f @ w.T
        ours = logits(f, w, 100.0)
        of_bf16 = logits(f.bfloat16(), w.bfloat16(), 100.0)
    assert naive.dtype == torch.bfloat16 and ours.dtype == of_bf16.dtype == torch.float32
    assert (naive.double() - exact).abs().max() > 0.01  # what autocast alone would give
    assert (ours.double() - exact).abs().max() < 1e-4


def test_text_and_visual_scores_hand_computed():
    f = torch.tensor([[1.0, 0.0]])
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.6, 0.8]]])  # two prompts, two classes
    # prompt 1: logits (20, 0); prompt 2: logits (0, 12); the sample's one maximum is 20 →
    # prompt 1 (1, e^-20), prompt 2 (e^-20, e^-8).
    expected = torch.tensor([[(1 + math.exp(-20)) / 2, (math.exp(-20) + math.exp(-8)) / 2]])
    torch.testing.assert_close(text_scores(f, text, 20.0), expected)
    protos = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    torch.testing.assert_close(visual_scores(f, protos, 10.0), torch.tensor([[math.exp(-4), 1.0]]))
    both = hybrid_scores(f, text, protos, scale=10.0, fusion=0.25)
    torch.testing.assert_close(both, 0.25 * text_scores(f, text, 10.0) + 0.75 * visual_scores(f, protos, 10.0))


def _per_prompt_max_text_scores(f, text, scale=20.0):
    """The reading §6 rules out: each prompt's own maximum subtracted."""
    scores = scale * f @ text.transpose(-1, -2)  # [s, B, K]
    return (scores - scores.amax(dim=-1, keepdim=True)).exp().mean(0)


def test_text_scores_subtract_one_maximum_per_sample_over_every_prompt_and_class():
    """Two prompts, three classes: a confident prompt 1 says class 0, a weak prompt 2 leans to
    class 1. A maximum per prompt lifts prompt 2's top class to 1 and makes class 2 win; the one
    maximum per sample (§6) keeps prompt 2 as weak as it is and class 0 wins."""
    f = torch.tensor([[1.0, 0.0]])
    # logits at scale 20: prompt 1 (10, 0, 9), prompt 2 (0, 3, 2.9)
    text = torch.tensor([[[0.5, 0.0], [0.0, 0.0], [0.45, 0.0]], [[0.0, 0.0], [0.15, 0.0], [0.145, 0.0]]])
    ours = text_scores(f, text, 20.0)
    e = math.exp
    torch.testing.assert_close(ours, torch.tensor([[(1 + e(-10)) / 2, (e(-10) + e(-7)) / 2, (e(-1) + e(-7.1)) / 2]]))
    assert ours.argmax().item() == 0
    assert _per_prompt_max_text_scores(f, text).argmax().item() == 2  # the other reading predicts another class
    # the same scores for the sample alone and inside any batch
    for others in (torch.randn(4, 2), 5 * torch.randn(7, 2)):
        batch = torch.cat([others[:2], f, others[2:]])
        torch.testing.assert_close(text_scores(batch, text, 20.0)[2], ours[0])


def test_hybrid_prediction_does_not_depend_on_the_batch():
    d = 8
    text = torch.eye(d)[:2].unsqueeze(0)  # one prompt; classes 0, 1 along e0, e1
    protos = torch.eye(d)[2:4]  # visual prototypes along e2, e3
    # x: text clearly says class 0, vision slightly says class 1.
    x = torch.tensor([0.3, 0.0, 0.09, 0.1, 0.0, 0.0, 0.0, 0.0])
    x[4] = math.sqrt(1 - x.pow(2).sum())
    extreme = torch.eye(d)[1]  # a sample whose text logit is the maximal 20
    others = F.normalize(torch.randn(5, d), dim=-1)
    alone = hybrid_scores(x[None], text, protos)
    for batch in (torch.stack([x, extreme]), torch.cat([x[None], others]), torch.cat([others, x[None], extreme[None]])):
        row = int((batch == x).all(-1).nonzero()[0])
        torch.testing.assert_close(hybrid_scores(batch, text, protos)[row], alone[0])
    assert alone.argmax().item() == 0
    with_extreme = torch.stack([x, extreme])
    assert _batch_max_hybrid(with_extreme, text, protos)[0].argmax().item() == 1  # the batch changed it
    torch.testing.assert_close(_batch_max_hybrid(x[None], text, protos), alone)  # alone, both agree


def test_cosine_logits():
    f, w = torch.tensor([[3.0, 4.0]]), torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    torch.testing.assert_close(cosine_logits(f, w, scale=10.0), torch.tensor([[6.0, 8.0]]))


# ------------------------------------------------------------------------------ §7 replay


def test_gaussian_bank_statistics_match_numpy():
    features = torch.randn(40, 3) * torch.tensor([1.0, 2.0, 0.5]) + 4
    labels = torch.tensor([0, 1] * 20)
    bank = GaussianBank(eps=1e-4)
    bank.add([1, 0], features, labels)
    assert bank.classes == [1, 0]
    for c in (0, 1):
        x = features[labels == c].double().numpy()
        mean, cov = bank.stats(c)
        np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(cov.numpy(), np.cov(x, rowvar=False, ddof=1) + 1e-4 * np.eye(3), rtol=1e-12)
        assert cov.dtype == torch.float64


def test_gaussian_bank_samples_follow_the_stored_gaussian():
    mu = torch.tensor([3.0, -1.0, 0.5])
    L = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, -0.3, 0.7]])
    features = torch.cat([mu + torch.randn(500, 3) @ L.T, torch.randn(50, 3)])
    labels = torch.tensor([4] * 500 + [2] * 50)
    bank = GaussianBank(eps=1e-4)
    bank.add([4, 2], features, labels)
    g = torch.Generator().manual_seed(1)
    x, y = bank.sample([2, 4], 3, g)
    assert x.shape == (6, 3) and x.dtype == torch.float32
    assert y.tolist() == [2, 2, 2, 4, 4, 4]
    x, _ = bank.sample([4], 40_000, g)
    mean, cov = bank.stats(4)
    torch.testing.assert_close(x.double().mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.double().T), cov, atol=0.06, rtol=0)
    restored = GaussianBank()
    restored.load_state_dict(bank.state_dict())
    for classes in ([4, 2], [2]):  # every stored class (the fast path) and a subset
        a = bank.sample(classes, 5, torch.Generator().manual_seed(7))
        b = restored.sample(classes, 5, torch.Generator().manual_seed(7))
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError):
        bank.add([4], features, labels)
