"""Typed run configuration: preset YAML + dotted ``--set key=value`` overrides, validated.

A preset is a YAML mapping whose nesting mirrors :class:`Config`. It may name another preset with
``extends: NAME`` and is merged over it. Every user mistake raises :class:`ConfigError` with one
sentence that names the key, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESETS_DIR = Path(os.environ.get("SECA_TUI_PRESETS", Path(__file__).resolve().parents[1] / "presets"))


class ConfigError(ValueError):
    """A configuration mistake, described in one sentence for the user."""


def _choice(*values: str, default: str) -> Any:
    return field(default=default, metadata={"choices": values})


def _range(default: Any, lo: float | None = None, hi: float | None = None) -> Any:
    return field(default=default, metadata={"min": lo, "max": hi})


@dataclass
class DataConfig:
    name: str = _choice("shapes-r", "cifar100", "imagenet-r", "imagenet-a", "folder", "synthetic", default="shapes-r")
    root: str = ""  # dataset folder; "" means the dataset's default under the home dir
    download: bool = False  # CIFAR-100 only, when a network exists
    split_seed: int = 0  # seed of the per-class train/test manifest for raw wnid folders
    test_fraction: float = _range(0.2, 0.01, 0.99)
    train_per_class: int = _range(0, 0)  # 0 = all; a cap for reduced-size runs
    test_per_class: int = _range(0, 0)
    bad_images: str = _choice("skip", "stop", default="skip")
    workers: int = _range(0, 0, 64)  # image-decoding threads (0 = min(8, CPU count))
    synthetic_classes: int = _range(200, 1)  # `synthetic` only: benchmark data at real sizes
    synthetic_size: int = _range(224, 8)


@dataclass
class ScenarioConfig:
    n_tasks: int = _range(10, 1)
    initial_increment: int = _range(0, 0)  # 0: all tasks have n_classes / n_tasks classes
    increment: int = _range(0, 0)
    order: str = ""  # a named order in presets/class_orders.yaml ("" = seeded shuffle)
    class_order: list = field(default_factory=list)  # explicit order; wins over `order`
    trial: int = _range(0, 0)  # which order of the named list / offset of the seed
    trials: int = _range(1, 1)  # how many trials (class orders) the preset defines
    seed: int = 1993
    classes: int = _range(0, 0)  # use only the first N classes of the order (0 = all)


@dataclass
class ModelConfig:
    name: str = "ViT-B-16"  # any open_clip model name, or one of the package's own configs
    pretrained: str = "openai"  # an open_clip pretrained tag, a local checkpoint path, or "none"
    adapter_dim: int = _range(16, 1)
    adapter_scale: float = _range(0.1, 0.0)
    adapter_dropout: float = _range(0.1, 0.0, 0.99)
    prompt_length: int = _range(8, 1, 32)
    prompt_init_std: float = _range(0.02, 0.0)
    prompt_init: str = ""  # "": N(0, std²) as in the method; a phrase: start each prompt from its words (CoOp's ctx_init)
    zeroshot_template: str = "a good photo of a {}."
    # auto: what the weights need (QuickGELU for OpenAI's; engine/model/weights.py); the run's
    # config.yaml records the resolved true/false
    quick_gelu: str = _choice("auto", "true", "false", default="auto")
    logit_scale: float = _range(0.0, 0.0)  # 0: CLIP's own exp(logit_scale), ~100 for OpenAI weights


@dataclass
class TrainConfig:
    epochs: int = _range(10, 0)
    batch_size: int = _range(64, 1)
    eval_batch_size: int = _range(64, 1)
    lr: float = _range(1e-3, 0.0)  # adapters, aggregator, refinement module
    prompt_lr: float = _range(5e-4, 0.0)
    weight_decay: float = _range(5e-4, 0.0)
    milestones: list = field(default_factory=lambda: [2, 5])
    gamma: float = _range(0.1, 0.0)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = False
    log_every: int = _range(10, 1)  # steps between `step` events
    heartbeat_seconds: float = _range(10.0, 0.1)
    orphan_grace_seconds: float = _range(300.0, 0.0)  # a torchrun rank whose agent died, stuck, is ended after this
    threads: int = _range(0, 0)  # torch CPU threads (0 = torch's default)


@dataclass
class SecaConfig:
    kd: str = _choice("auto", "none", "clip", "last", "mean", "sgakt", default="auto")
    classifier: str = _choice(
        "auto", "text", "centroid_frozen", "centroid_adapted", "linear", "sevpr_hybrid", default="auto"
    )
    replay: str = _choice("auto", "off", "gaussian", default="auto")
    relevance: str = _choice("per_query", "pooled", default="per_query")
    prune: str = _choice("min", "max", default="min")
    pool_size: int = _range(5, 1)
    kd_scale: float = _range(20.0, 0.0)  # multiplier of the distillation logits
    infer_scale: float = _range(20.0, 0.0)  # multiplier of the hybrid classifier's scores
    fusion: float = _range(0.5, 0.0, 1.0)  # weight of the text score in the hybrid
    utility_momentum: float = _range(0.5, 0.0, 1.0)
    replay_per_class: int = _range(10, 1)
    covariance_eps: float = _range(1e-4, 0.0)
    cache_teacher_features: bool = True
    # the authors' code runs the pool snapshots (every step) and SECA++'s statistics pass with the
    # adapters' dropout on; false (default) runs them with dropout off, which lets the pool features be cached
    authors_dropout: bool = False


METHODS = ("zeroshot", "hpeft", "seca", "seca++")

# What `auto` resolves to for each method; explicit values in a preset or --set win.
METHOD_DEFAULTS = {
    "zeroshot": {"kd": "none", "classifier": "text", "replay": "off"},
    "hpeft": {"kd": "none", "classifier": "text", "replay": "off"},
    "seca": {"kd": "sgakt", "classifier": "sevpr_hybrid", "replay": "off"},
    "seca++": {"kd": "sgakt", "classifier": "sevpr_hybrid", "replay": "gaussian"},
}


# The methods and the paper's ablations, as the overrides that make them: key → (label in tables, overrides).
# The new-run form offers them; scripts/results_table.py runs each.
VARIANTS = {
    "zeroshot": ("zero-shot CLIP", ["method=zeroshot"]),
    "hpeft": ("H-PEFT", ["method=hpeft"]),
    "seca": ("SECA", ["method=seca"]),
    "seca++": ("SECA++", ["method=seca++"]),
    "seca w/o SG-AKT": ("SECA w/o SG-AKT", ["method=seca", "seca.kd=none"]),
    "seca w/o SE-VPR": ("SECA w/o SE-VPR", ["method=seca", "seca.classifier=text"]),
}


@dataclass
class Config:
    name: str = ""
    description: str = ""  # one line shown by `seca-tui presets`
    method: str = _choice(*METHODS, default="seca")
    data: DataConfig = field(default_factory=DataConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seca: SecaConfig = field(default_factory=SecaConfig)


# ----------------------------------------------------------------------------------------- keys


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, tuple[type, dataclasses.Field]]:
    """Every leaf key as ``a.b`` → (type, field)."""
    keys: dict[str, tuple[type, dataclasses.Field]] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_section(tp):
            keys.update(all_keys(tp, f"{prefix}{f.name}."))
        else:
            keys[prefix + f.name] = (tp, f)
    return keys


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not near:  # a misspelt section ("trian.epochs") still has a recognisable leaf
        leaf = key.rsplit(".", 1)[-1]
        near = [k for k in valid if k.rsplit(".", 1)[-1] == leaf][:1]
    hint = f"; did you mean '{near[0]}'?" if near else "."
    return ConfigError(f"Unknown config key {key!r}{hint}")


# ----------------------------------------------------------------------------------------- values


_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # 1e-3, 5E-4, .5, 2.


def _coerce(key: str, value: Any, tp: Any, f: dataclasses.Field) -> Any:
    """Check ``value`` against the field's type and limits; return it in the field's type."""
    def bad(allowed: str) -> ConfigError:
        return ConfigError(f"Config key '{key}' has value {value!r}, but it must be {allowed}.")

    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 and 5E-4 (no dot, or no exponent sign) as strings
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise bad("a finite number")
    elif tp is str:
        if isinstance(value, bool) and "true" in (f.metadata.get("choices") or ()):
            value = "true" if value else "false"  # YAML reads `quick_gelu: true` as a boolean
        elif not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)  # a YAML scalar like `trial_name: 1`
            else:
                raise bad("a string")
    elif tp is list or typing.get_origin(tp) is list:
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad("a list of integers, e.g. [2, 5]")
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise bad("one of " + ", ".join(choices))
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is not None and value < lo:
        raise bad(f"at least {lo}")
    if hi is not None and value > hi:
        raise bad(f"at most {hi}")
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=3"`` → ``("train.epochs", 3)``; the value is read as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} is not of the form key=value, e.g. train.epochs=3.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override {text!r} has no key before '=', e.g. train.epochs=3.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text, the type check below names what is expected
    return key, value


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def from_flat(values: dict[str, Any]) -> Config:
    """Build a validated :class:`Config` from dotted keys; unknown keys and bad values raise."""
    keys = all_keys()
    cfg = Config()
    for key, value in values.items():
        if key not in keys:
            raise _unknown_key(key, list(keys))
        tp, f = keys[key]
        *path, leaf = key.split(".")
        target = cfg
        for part in path:
            target = getattr(target, part)
        setattr(target, leaf, _coerce(key, value, tp, f))
    return _resolve(cfg)


def _resolve(cfg: Config) -> Config:
    """Fill `auto` switches from the method and check the cross-field rules."""
    for switch, value in METHOD_DEFAULTS[cfg.method].items():
        if getattr(cfg.seca, switch) == "auto":
            setattr(cfg.seca, switch, value)
    s = cfg.scenario
    if s.initial_increment and not s.increment and s.n_tasks > 1:
        raise ConfigError("Config key 'scenario.initial_increment' is set, so 'scenario.increment' must be set too.")
    if s.trial >= s.trials:
        raise ConfigError(f"Config key 'scenario.trial' has value {s.trial}, but the preset defines {s.trials} trial(s) (0..{s.trials - 1}).")
    if sorted(cfg.train.milestones) != list(cfg.train.milestones):
        raise ConfigError(f"Config key 'train.milestones' has value {cfg.train.milestones}, but it must be increasing.")
    return cfg


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(tree: dict) -> Config:
    if not isinstance(tree, dict):
        raise ConfigError("A config must be a YAML mapping of keys to values.")
    return from_flat(_flatten(tree))


# ----------------------------------------------------------------------------------------- presets


def preset_path(name_or_file: str) -> Path:
    """A preset name (``demo``) or a path to a YAML file. A folder of that name in the working
    directory (a dataset called ``tiny``, say) does not hide the preset."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"Preset file {name_or_file!r} does not exist.")
        return p
    candidate = PRESETS_DIR / f"{name_or_file}.yaml"
    if not candidate.is_file():
        names = preset_names()
        near = difflib.get_close_matches(name_or_file, names, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else f"; available: {', '.join(names)}."
        raise ConfigError(f"No preset named {name_or_file!r}{hint}")
    return candidate


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p.stem != "class_orders")


def _read_yaml(path: Path) -> dict:
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"Preset '{path}' is not valid YAML{where}.") from None
    except OSError as e:
        raise ConfigError(f"Preset '{path}' cannot be read: {e.strerror}.") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"Preset '{path}' must be a YAML mapping of keys to values.")
    return tree


def _preset_tree(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path.resolve() in seen:
        raise ConfigError(f"Preset '{path}' extends itself through 'extends'.")
    tree = _read_yaml(path)
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    if not isinstance(parent, str):
        raise ConfigError(f"Preset '{path}' has 'extends: {parent!r}', but it must name a preset.")
    base = _preset_tree(preset_path(parent), seen + (path.resolve(),))
    return _merge(base, tree)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load(preset: str, overrides: list[str] = ()) -> Config:
    """Load a preset (name or file), apply ``key=value`` overrides, validate and resolve."""
    path = preset_path(preset)
    flat = _flatten(_preset_tree(path))
    flat.setdefault("name", path.stem)
    for text in overrides:
        key, value = parse_override(text)
        flat[key] = value
    return from_flat(flat)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save(cfg: Config, path: Path) -> None:
    """Write ``cfg`` as YAML to ``path`` through a temporary file, so a reader never sees half of it."""
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(dump(cfg))
    os.replace(tmp, path)

