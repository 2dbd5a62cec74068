"""CLIP through open_clip: the block-by-block image tower and the prompted text tower reproduce
open_clip's own forward passes, and bad model settings fail at once with a sentence."""
import time

import pytest
import torch
import torch.nn.functional as F

from engine.config import ModelConfig
from engine.model.adapters import AdapterSet
from engine.model.clip import ModelLoadError, load_clip


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return load_clip(ModelConfig(name="seca-tiny", pretrained="none"), torch.device("cpu"))


def test_image_tower_matches_open_clip(clip):
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(clip.encode_image(x), clip.model.encode_image(x), atol=1e-6)
    adapters = AdapterSet(clip.vision_layers, clip.vision_width, 16, 0.1, 0.1).eval()
    # zero-initialised `up`: the adapted model starts equal to CLIP
    assert torch.allclose(clip.encode_image(x, adapters), clip.model.encode_image(x), atol=1e-6)
    torch.nn.init.normal_(adapters.blocks[0].up.weight)
    assert not torch.allclose(clip.encode_image(x, adapters), clip.model.encode_image(x), atol=1e-3)


def test_prompted_text_matches_open_clip(clip):
    tokens = clip.prompt_tokens(["red circle", "a class name of quite a few words"], 8)
    placeholder = clip.placeholder_embedding(8)
    ours = clip.encode_prompted(placeholder, tokens)
    assert torch.allclose(ours, F.normalize(clip.model.encode_text(tokens), dim=-1), atol=1e-6)
    other = clip.encode_prompted(torch.randn(8, clip.text_width) * 0.02, tokens)
    assert not torch.allclose(ours, other, atol=1e-3)


@pytest.mark.parametrize("cfg, fragment", [
    (ModelConfig(name="ViT-B-17"), "not an open_clip model name"),
    (ModelConfig(name="ViT-B-16", pretrained="laion9b"), "no pretrained tag 'laion9b'"),
    (ModelConfig(name="seca-tiny", pretrained="/nowhere/clip.pt"), "does not exist"),
])
def test_bad_model_settings(cfg, fragment):
    with pytest.raises(ModelLoadError, match=fragment):
        load_clip(cfg, torch.device("cpu"))


def test_missing_weights_fail_at_once_offline():
    # HF_HUB_OFFLINE is set by conftest, as the engine sets it when the hub is unreachable: no ~47 s retry
    t0 = time.time()
    with pytest.raises(ModelLoadError, match="--set model.pretrained=/path/to/checkpoint.pt"):
        load_clip(ModelConfig(name="ViT-B-16", pretrained="openai"), torch.device("cpu"))
    assert time.time() - t0 < 10


def test_local_checkpoint_loads_and_a_corrupt_one_is_named(clip, tmp_path):
    good = tmp_path / "tiny.pt"
    torch.save(clip.model.state_dict(), good)
    again = load_clip(ModelConfig(name="seca-tiny", pretrained=str(good)), torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), clip.model.state_dict().values()))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="bad.pt"):
        load_clip(ModelConfig(name="seca-tiny", pretrained=str(bad)), torch.device("cpu"))


def test_prompt_can_start_from_a_phrase(clip):
    tokens = clip.prompt_tokens(["red circle", "blue star"], 8)
    context = clip.context_embedding("a good photo of a", 8)
    expected = F.normalize(clip.model.encode_text(clip.tokenize(["X X X a good photo of a red circle.",
                                                                 "X X X a good photo of a blue star."])), dim=-1)
    assert torch.allclose(clip.encode_prompted(context, tokens), expected, atol=1e-6)
    with pytest.raises(ModelLoadError.__base__, match="has 9 tokens, but model.prompt_length is 8"):
        clip.context_embedding("one two three four five six seven eight nine", 8)
