"""Where a model's weights come from, whether they can be had, and which activation they need.

Imports nothing heavy at module level: open_clip (and so torch) loads only when a pretrained *tag*
has to be looked up, so ``weights_available`` can serve a preflight check.

QuickGELU (seca-method.md §2): OpenAI's CLIP weights were trained with QuickGELU, x·σ(1.702x), but
open_clip 3.x builds ``ViT-B-16`` with nn.GELU even for the ``openai`` tag and only warns; every
feature of such a model is off. ``model.quick_gelu: auto`` resolves it from what is known about the
weights; ``true``/``false`` force it.
"""
from __future__ import annotations

import os
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine.config import ConfigError, ModelConfig

CONFIG_DIR = Path(__file__).parent / "configs"
WEIGHTS_DIR = Path(__file__).parent / "weights"
HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # open_clip's names, safetensors first


class ModelLoadError(ConfigError):
    """The model or its weights cannot be loaded; the message says how to provide them."""


@dataclass
class Weights:
    """What ``load_clip`` passes to open_clip, and the activation the weights need."""

    pretrained: str | None  # a file path, an open_clip tag, or None (random init)
    is_file: bool
    quick_gelu: bool
    reason: str  # why that activation, for engine.log and the run_started event
    warning: str | None = None  # said once as a `log` event when the activation is a guess
    preprocess: dict | None = None  # the tag's image mean/std/interpolation when loading its cached file


def open_clip_module():
    """open_clip with the package's own model configs registered (seca-tiny, seca-shapes)."""
    import open_clip

    if "seca-tiny" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)
    return open_clip


def activation_kwargs(w: Weights) -> dict:
    """open_clip arguments that build the activation ``w`` resolved: ``quick_gelu`` as a model kwarg
    overrides the model config both ways (``force_quick_gelu`` alone can only turn it on, and keeps
    open_clip from warning about a mismatch with the tag)."""
    return {"force_quick_gelu": w.quick_gelu, "quick_gelu": w.quick_gelu}


def resolve_pretrained(tag: str) -> str | None:
    """A checkpoint path (absolute, relative, or a file shipped in the package), a tag, or None."""
    if tag in ("", "none"):
        return None
    shipped = WEIGHTS_DIR / tag
    if shipped.is_file():
        return str(shipped)
    return tag


def is_file_value(pretrained: str) -> bool:
    return os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))


def is_openai_original(path: str) -> bool:
    """Whether a checkpoint file is one of OpenAI's own CLIP releases: a TorchScript archive (the
    format OpenAI publishes; ``constants.pkl`` is in every TorchScript zip and in no torch.save file),
    or open_clip's copy of OpenAI's weights as the Hugging Face cache stores it (``…openai/``)."""
    if ".openai" + os.sep in path:
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _hub_reachable(timeout: float = 1.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached_tag_file(pretrained_cfg: dict) -> str | None:
    """The tag's weights in the local cache (Hugging Face's, or open_clip's for URL-only tags), found
    without any network request."""
    hub, url = pretrained_cfg.get("hf_hub", ""), pretrained_cfg.get("url", "")
    if not hub:
        target = Path("~/.cache/clip").expanduser() / os.path.basename(url) if url else None
        return str(target) if target and target.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    repo, filename = os.path.split(hub)  # "org/model/file.bin", or "org/model/" for open_clip's default names
    for name in ([filename] if filename else list(HF_WEIGHT_FILES)):
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str):
            return found
    return None


def _missing_weights(cfg: ModelConfig) -> ModelLoadError:
    return ModelLoadError(
        f"Weights '{cfg.pretrained}' for {cfg.name} are not in the local cache and cannot be downloaded here; "
        f"download the checkpoint on a machine with internet (open_clip caches it under ~/.cache/huggingface) "
        f"or pass the file with --set model.pretrained=/path/to/checkpoint.pt."
    )


def resolve_quick_gelu(cfg: ModelConfig, pretrained: str | None, is_file: bool, pretrained_cfg: dict) -> tuple[bool, str, str | None]:
    """(QuickGELU or not, why, a warning or None) for ``model.quick_gelu``: forced by ``true``/``false``;
    under ``auto`` the model config's own ``quick_gelu`` (``ViT-B-16-quickgelu``, the package's
    configs), else the pretrained tag's config (every ``openai`` tag), else for a local file whether
    it is one of OpenAI's originals; a file that cannot be told apart gets a warning naming the key."""
    config_says = bool(open_clip_module().get_model_config(cfg.name).get("quick_gelu", False))
    openai_weights = (bool(pretrained_cfg.get("quick_gelu")) if pretrained and not is_file
                      else bool(pretrained and is_openai_original(pretrained)))
    if cfg.quick_gelu != "auto":
        forced = cfg.quick_gelu == "true"
        warning = None
        if openai_weights and not forced:
            warning = (f"model.quick_gelu=false builds {cfg.name} with GELU, but its weights '{cfg.pretrained}' "
                       f"were trained with QuickGELU; its features are off.")
        return forced, "model.quick_gelu", warning
    if config_says:
        return True, f"the model config {cfg.name}", None
    if pretrained is None:
        return False, f"the model config {cfg.name} (random weights)", None
    if not is_file:
        return openai_weights, f"the pretrained tag '{cfg.pretrained}'", None
    if openai_weights:
        return True, "an OpenAI checkpoint file", None
    if Path(pretrained).parent == WEIGHTS_DIR:
        return False, f"the model config {cfg.name}", None  # the package's own file, trained as its config says
    return False, f"the model config {cfg.name}", (
        f"Cannot tell from checkpoint '{pretrained}' whether its weights were trained with QuickGELU; "
        f"building {cfg.name} with GELU as its config says. For OpenAI's weights set model.quick_gelu=true.")


def locate(cfg: ModelConfig, need_weights: bool = True) -> Weights:
    """Check the model name and its weights and resolve the activation, loading nothing.

    A missing file, an unknown tag, or a tag that is neither cached nor downloadable raises
    :class:`ModelLoadError` at once: without a network the hub is never waited for (its client would
    retry for ~47 s). A cached tag is loaded from its file, so no request is made at all."""
    oc = open_clip_module()
    if cfg.name not in oc.list_models():
        raise ModelLoadError(f"Model '{cfg.name}' is not an open_clip model name; see open_clip.list_models().")
    pretrained = resolve_pretrained(cfg.pretrained)
    is_file = pretrained is not None and is_file_value(pretrained)
    pretrained_cfg: dict = {}
    if is_file and not Path(pretrained).is_file():
        raise ModelLoadError(f"Checkpoint file '{pretrained}' for model.pretrained does not exist.")
    if pretrained and not is_file:
        tags = [t for m, t in oc.list_pretrained() if m == cfg.name]
        if pretrained not in tags:
            raise ModelLoadError(
                f"Model '{cfg.name}' has no pretrained tag '{pretrained}'; known tags: {', '.join(tags) or 'none'}."
            )
        pretrained_cfg = oc.get_pretrained_cfg(cfg.name, pretrained)
    quick_gelu, reason, warning = resolve_quick_gelu(cfg, pretrained, is_file, pretrained_cfg)
    weights = Weights(pretrained, is_file, quick_gelu, reason, warning)
    if pretrained_cfg and need_weights:
        cached = _cached_tag_file(pretrained_cfg)
        if cached:
            keys = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
                    "resize_mode": "image_resize_mode"}
            weights.pretrained, weights.is_file = cached, True
            weights.preprocess = {arg: pretrained_cfg[k] for k, arg in keys.items() if k in pretrained_cfg}
        elif not _hub_reachable():
            raise _missing_weights(cfg)
    return weights


def weights_available(cfg: ModelConfig) -> str | None:
    """None when the model's weights can be had (none needed, a local file, cached, or a reachable
    hub); otherwise the one-sentence reason. For preflight checks before a run is created."""
    try:
        locate(cfg)
    except ModelLoadError as e:
        return str(e)
    return None
