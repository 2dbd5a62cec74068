"""Decoded task images and their batches: the split preprocessing equals CLIP's own transform, and
data-parallel ranks together see exactly one process's batches."""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import ModelConfig
from engine.data.loader import GlobalBatchSampler, Preprocess, batches, decode
from engine.data.source import BadImageError, Split
from engine.model.clip import load_clip


@pytest.fixture(scope="module")
def preprocess():
    return load_clip(ModelConfig(name="seca-tiny", pretrained="none"), torch.device("cpu")).preprocess


def test_split_preprocess_equals_clip_transform(preprocess):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (45, 61, 3), dtype=np.uint8))  # not square, not 32 px
    p = Preprocess(preprocess)
    ours = p.normalize(p.to_uint8(image).unsqueeze(0))[0]
    assert torch.equal(ours, preprocess(image))


@pytest.mark.parametrize("n, batch, world", [(10, 4, 1), (10, 4, 3), (7, 8, 2), (33, 6, 4)])
def test_ranks_partition_each_global_batch(n, batch, world):
    single = list(GlobalBatchSampler(n, batch, True, seed=5))
    ranks = [list(GlobalBatchSampler(n, batch, True, 5, r, world)) for r in range(world)]
    losses = torch.rand(n, generator=torch.Generator().manual_seed(0))  # any per-item loss
    for k, global_batch in enumerate(single):
        samplers = [GlobalBatchSampler(n, batch, True, 5, r, world) for r in range(world)]
        parts = [ranks[r][k] for r in range(world) if samplers[r].share(k) > 0]
        assert sorted(sum(parts, [])) == sorted(global_batch)
        # what DDP computes: the mean over ranks of share × the rank's mean loss = the global mean loss
        ddp = sum(samplers[r].share(k) * losses[ranks[r][k]].mean() for r in range(world)) / world
        assert ddp == pytest.approx(losses[global_batch].mean())
    assert sorted(sum(single, [])) == list(range(n))
    assert single == list(GlobalBatchSampler(n, batch, True, seed=5)) != list(GlobalBatchSampler(n, batch, True, seed=6))


def test_decode_skips_or_raises_on_bad_images(preprocess):
    good = Image.new("RGB", (8, 8), (200, 10, 10))

    def load(item):
        if item == "bad":
            raise OSError("truncated file")
        return good

    split = Split(items=["a", "bad", "b", "c"], labels=[0, 0, 1, 2], load=load)
    warned = []
    data = decode(split, {0: 0, 1: 1}, Preprocess(preprocess), True, warned.append, torch.device("cpu"))
    assert len(data) == 2 and data.labels.tolist() == [0, 1] and data.images.dtype == torch.uint8
    assert warned == ["Image bad cannot be read: truncated file."]
    with pytest.raises(BadImageError, match="Image bad"):
        decode(split, {0: 0}, Preprocess(preprocess), False, warned.append, torch.device("cpu"))
    b = list(batches(data, Preprocess(preprocess), 1))
    assert [pos.tolist() for _, _, pos in b] == [[0], [1]] and b[0][0].dtype == torch.float32
