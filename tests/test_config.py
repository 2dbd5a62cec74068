"""Presets, overrides and validation: every mistake is one sentence naming key, value and what is allowed."""
import pytest

from engine import config
from engine.config import ConfigError


def test_demo_preset_resolves_method_switches():
    cfg = config.load("demo")
    assert cfg.method == "seca" and cfg.seca.kd == "sgakt" and cfg.seca.classifier == "sevpr_hybrid"
    assert cfg.seca.replay == "off"
    plus = config.load("demo", ["method=seca++"])
    assert plus.seca.replay == "gaussian"
    hpeft = config.load("demo", ["method=hpeft"])
    assert (hpeft.seca.kd, hpeft.seca.classifier) == ("none", "text")
    # an explicit switch wins over the method's default
    assert config.load("demo", ["method=seca", "seca.kd=mean"]).seca.kd == "mean"


def test_extends_merges_over_the_parent():
    cfg = config.load("cifar100-20")
    assert cfg.scenario.n_tasks == 20 and cfg.scenario.order == "cifar100" and cfg.train.batch_size == 100


def test_overrides_are_yaml_scalars_and_lists():
    cfg = config.load("demo", ["train.epochs=7", "train.milestones=[3, 6]", "train.lr=0.01", "train.deterministic=true"])
    assert (cfg.train.epochs, cfg.train.milestones, cfg.train.lr, cfg.train.deterministic) == (7, [3, 6], 0.01, True)


@pytest.mark.parametrize("override, fragment", [
    ("trian.epochs=3", "did you mean 'train.epochs'"),
    ("train.epoch=3", "did you mean 'train.epochs'"),
    ("train.epochs=three", "'train.epochs' has value 'three', but it must be an integer"),
    ("train.epochs=-1", "must be at least 0"),
    ("seca.kd=teacher", "must be one of auto, none, clip, last, mean, sgakt"),
    ("method=seca+", "must be one of zeroshot, hpeft, seca, seca++"),
    ("seca.fusion=1.5", "must be at most 1.0"),
    ("train.milestones=[5, 2]", "must be increasing"),
    ("epochs", "is not of the form key=value"),
])
def test_mistakes_are_one_sentence(override, fragment):
    with pytest.raises(ConfigError) as e:
        config.load("demo", [override])
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_and_misspelt_presets(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'demo'"):
        config.load("dmeo")
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(str(bad))
    typo = tmp_path / "typo.yaml"
    typo.write_text("extends: demo\ntrain:\n  batch_sise: 8\n")
    with pytest.raises(ConfigError, match="'train.batch_sise'; did you mean 'train.batch_size'"):
        config.load(str(typo))


def test_resolved_config_round_trips(tmp_path):
    cfg = config.load("demo", ["method=seca++", "train.epochs=2"])
    path = tmp_path / "config.yaml"
    path.write_text(config.dump(cfg))
    assert config.load(str(path)) == cfg


def float_keys() -> list[str]:
    """Every float config key whose range admits 0.5."""
    return [key for key, (tp, f) in config.all_keys().items() if tp is float
            and (f.metadata.get("min") is None or f.metadata["min"] <= 0.5)
            and (f.metadata.get("max") is None or f.metadata["max"] >= 0.5)]


@pytest.mark.parametrize("text", ["5E-1", "5e-1", ".5", "0.5", "50e-2"])
def test_every_float_key_reads_exponents_and_bare_decimals(text, tmp_path):
    """YAML 1.1 reads 1e-3 and 5E-4 as strings; a float key takes them in --set and in a preset file."""
    keys = float_keys()
    assert "train.lr" in keys and len(keys) > 5
    cfg = config.load("tiny", [f"{key}={text}" for key in keys])
    preset = tmp_path / "p.yaml"
    sections: dict[str, list[str]] = {}
    for key in keys:
        section, leaf = key.split(".")
        sections.setdefault(section, []).append(f"  {leaf}: {text}")
    preset.write_text("extends: tiny\n" + "".join(f"{s}:\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))
    from_file = config.load(str(preset))
    for key in keys:
        section, leaf = key.split(".")
        assert getattr(getattr(cfg, section), leaf) == 0.5 and getattr(getattr(from_file, section), leaf) == 0.5
    assert config.load("tiny", ["train.lr=1e-3"]).train.lr == 1e-3


@pytest.mark.parametrize("text", ["1e", "e-3", "1.2.3", "nan", "inf", "1e-3x"])
def test_a_float_key_still_refuses_what_is_not_a_number(text):
    with pytest.raises(ConfigError, match=r"'train.lr' has value .*, but it must be a (finite )?number\.$"):
        config.load("tiny", [f"train.lr={text}"])


def test_a_folder_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "tiny").mkdir()  # e.g. a dataset folder called tiny where the user stands
    monkeypatch.chdir(tmp_path)
    assert config.load("tiny").name == "tiny"
