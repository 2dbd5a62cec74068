"""Property-based: any preset text and any --set string either loads or fails with ConfigError."""
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import config
from engine.config import ConfigError

KEYS = sorted(config.all_keys())
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.integers(-5, 50), max_size=4))
key_text = st.one_of(st.sampled_from(KEYS), st.text(string.ascii_lowercase + "._", min_size=0, max_size=20))


def loads_or_config_error(fn):
    try:
        return fn()
    except ConfigError as e:
        assert str(e) and "\n" not in str(e).split(" Expected layout")[0]
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_any_override_string(text):
    loads_or_config_error(lambda: config.load("demo", [text]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key_text, scalars)
def test_any_key_and_value(key, value):
    cfg = loads_or_config_error(lambda: config.load("demo", [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"]))
    if cfg is not None and key in KEYS:
        *path, leaf = key.split(".")
        target = cfg
        for part in path:
            target = getattr(target, part)
        assert getattr(target, leaf) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=200), st.dictionaries(key_text, st.one_of(scalars, st.dictionaries(key_text, scalars, max_size=3)), max_size=4).map(yaml.safe_dump)))
def test_any_preset_file(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    loads_or_config_error(lambda: config.load(str(path)))
