"""CLIP through open_clip: the block-by-block image tower and the prompted text tower reproduce
open_clip's own forward passes, the activation follows the weights (QuickGELU for OpenAI's), and bad
model settings fail at once with a sentence."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.config import ModelConfig
from engine.model.adapters import AdapterSet
from engine.model import weights
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


def test_missing_weights_fail_at_once_without_any_variable_set(tmp_path):
    """Users set no HF_HUB_OFFLINE: without a network a missing `openai` weight must fail at once, not
    after the hub client's ~47 s of retries. A fresh process without the variable (conftest sets it
    for this one), with an empty Hugging Face cache; the bound is far below the retries' 47 s."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf")
    code = ("import torch; from engine.config import ModelConfig; from engine.model.clip import load_clip\n"
            "load_clip(ModelConfig(name='ViT-B-16', pretrained='openai'), torch.device('cpu'))")
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode != 0
    assert "ModelLoadError" in out.stderr and "--set model.pretrained=/path/to/checkpoint.pt" in out.stderr
    assert time.time() - t0 < 30, "the hub was waited for"
    assert weights.weights_available(ModelConfig(name="ViT-B-16", pretrained="openai")).startswith("Weights 'openai'")
    assert weights.weights_available(ModelConfig(name="seca-tiny", pretrained="none")) is None


def test_prompt_tokens_end_with_the_name_and_no_period(clip):
    """The authors' prompt string "X X X X X X X X {name}" (seca-method.md §2): 8 placeholders after
    the start token, the name's tokens, then end-of-text; no period token."""
    tokens = clip.prompt_tokens(["red circle"], 8)[0].tolist()
    tok = clip.tokenizer
    start, end = tokens[0], tokens[int(torch.tensor(tokens).argmax())]
    name = tok(["red circle"])[0].tolist()
    name = name[1 : name.index(end)]
    period = tok(["."])[0].tolist()[1]
    placeholder = tok(["X"])[0].tolist()[1]
    body = tokens[1 : tokens.index(end) + 1]
    assert tokens[0] == start and body == [placeholder] * 8 + name + [end]
    assert period not in body


# ------------------------------------------------------------------------------ activation


def activations(model):
    kinds = {type(m).__name__ for m in model.modules()}
    return {"QuickGELU"} & kinds | {"GELU"} & kinds


def test_openai_tags_resolve_to_quick_gelu_and_build_it():
    """ViT-B-16 + `openai` (the published benchmarks' presets): open_clip's ViT-B-16 config says GELU,
    the tag's config says QuickGELU; auto follows the weights. Built without weights (none reach this
    machine): every MLP of both towers gets QuickGELU."""
    w = weights.locate(ModelConfig(name="ViT-B-16", pretrained="openai"), need_weights=False)
    assert w.quick_gelu and "pretrained tag 'openai'" in w.reason and w.warning is None
    model = weights.open_clip_module().create_model("ViT-B-16", pretrained=None, **weights.activation_kwargs(w))
    assert activations(model) == {"QuickGELU"}
    # a LAION tag of the same model keeps GELU
    assert not weights.locate(ModelConfig(name="ViT-B-16", pretrained="laion2b_s34b_b88k"), need_weights=False).quick_gelu
    forced = weights.locate(ModelConfig(name="ViT-B-16", pretrained="openai", quick_gelu="false"), need_weights=False)
    assert not forced.quick_gelu and "model.quick_gelu=false" in forced.warning


@pytest.mark.parametrize("setting, expected", [("auto", {"QuickGELU"}), ("true", {"QuickGELU"}), ("false", {"GELU"})])
def test_quick_gelu_setting_builds_that_activation(setting, expected):
    clip = load_clip(ModelConfig(name="seca-tiny", pretrained="none", quick_gelu=setting), torch.device("cpu"))
    assert activations(clip.model) == expected and clip.activation == expected.pop()


@pytest.fixture
def gelu_config(tmp_path):
    """A tiny model config whose own activation is GELU, as open_clip's ViT-B-16 is."""
    cfg = json.loads((weights.CONFIG_DIR / "seca-tiny.json").read_text())
    cfg["quick_gelu"] = False
    path = tmp_path / "seca-tiny-gelu.json"
    path.write_text(json.dumps(cfg))
    weights.open_clip_module().add_model_config(path)
    return "seca-tiny-gelu"


def test_a_local_openai_checkpoint_is_detected_and_an_unknown_one_warns(gelu_config, tmp_path, clip):
    """Local files: OpenAI's weights as the Hugging Face cache lays them out (…openai/) get QuickGELU;
    the same file elsewhere cannot be told apart: GELU as the config says, and a warning naming the key."""
    hf = tmp_path / "models--timm--vit_tiny.openai" / "snapshots" / "0"
    hf.mkdir(parents=True)
    torch.save(clip.model.state_dict(), hf / "open_clip_pytorch_model.bin")
    detected = load_clip(ModelConfig(name=gelu_config, pretrained=str(hf / "open_clip_pytorch_model.bin")), torch.device("cpu"))
    assert activations(detected.model) == {"QuickGELU"} and detected.weights.warning is None
    plain = tmp_path / "tiny.pt"
    torch.save(clip.model.state_dict(), plain)
    unknown = load_clip(ModelConfig(name=gelu_config, pretrained=str(plain)), torch.device("cpu"))
    assert activations(unknown.model) == {"GELU"} and "model.quick_gelu=true" in unknown.weights.warning


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated; OpenAI still ships its files so
def test_torchscript_archives_are_openai_originals(tmp_path):
    """OpenAI publishes CLIP as TorchScript; a torch.save file is not one."""
    scripted = tmp_path / "ViT-B-16.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    saved = tmp_path / "state.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), saved)
    assert weights.is_openai_original(str(scripted)) and not weights.is_openai_original(str(saved))


def test_the_published_presets_resolve_to_quick_gelu():
    from engine.config import load, preset_names

    for name in preset_names():
        cfg = load(name)
        if cfg.model.pretrained == "openai":
            assert weights.locate(cfg.model, need_weights=False).quick_gelu, name


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
    expected = F.normalize(clip.model.encode_text(clip.tokenize(["X X X a good photo of a red circle",
                                                                 "X X X a good photo of a blue star"])), dim=-1)
    assert torch.allclose(clip.encode_prompted(context, tokens), expected, atol=1e-6)
    with pytest.raises(ModelLoadError.__base__, match="has 9 tokens, but model.prompt_length is 8"):
        clip.context_embedding("one two three four five six seven eight nine", 8)


def test_a_cached_tag_is_loaded_from_its_cache_file(tmp_path):
    """A tag whose weights are in the Hugging Face cache is handed to open_clip as that file (with the
    tag's preprocessing), so no request is made. A fresh process: the hub client reads its cache
    location at import. The cached file is a stand-in: locating it loads nothing."""
    snapshot = tmp_path / "hub" / "models--timm--vit_base_patch16_clip_224.openai" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_pytorch_model.bin").write_bytes(b"stand-in")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | {"HF_HUB_CACHE": str(tmp_path / "hub")}
    code = ("import json; from engine.config import ModelConfig; from engine.model.weights import locate\n"
            "w = locate(ModelConfig(name='ViT-B-16', pretrained='openai'))\n"
            "print(json.dumps([w.pretrained, w.is_file, w.quick_gelu, w.preprocess]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    path, is_file, quick_gelu, preprocess = json.loads(out.stdout.splitlines()[-1])
    assert Path(path).resolve() == (snapshot / "open_clip_pytorch_model.bin").resolve() and is_file and quick_gelu
    assert preprocess["image_interpolation"] == "bicubic" and len(preprocess["image_mean"]) == 3
