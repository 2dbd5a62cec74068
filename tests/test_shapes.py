"""The built-in shapes world: renderer, the shapes-r dataset and its cache, the shipped small CLIP."""
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import yaml

from engine.config import DataConfig, ModelConfig
from engine.data import shapes
from engine.data.registry import load_source
from engine.model.clip import load_clip

REPO = Path(__file__).resolve().parents[1]


def _script():
    """scripts/pretrain_shapes_clip.py as a module: its zero-shot evaluation is what the README reports."""
    spec = importlib.util.spec_from_file_location("pretrain_shapes_clip", REPO / "scripts" / "pretrain_shapes_clip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _colour_pixels(img, colour: str, within: float = 60) -> int:
    """How many pixels lie within ``within`` (RGB distance) of the colour's base value."""
    a = np.asarray(img, float)
    return int((np.linalg.norm(a - np.array(shapes.COLOURS[colour], float), axis=-1) < within).sum())


# ------------------------------------------------------------------------------------- renderer


def test_classes_are_every_colour_with_every_shape_in_sorted_order():
    assert len(shapes.CLASS_NAMES) == 100 == len(set(shapes.CLASS_NAMES))
    assert list(shapes.CLASS_NAMES) == sorted(shapes.CLASS_NAMES)
    words = [w for name in shapes.CLASS_NAMES for w in name.split()]
    assert set(words) == set(shapes.COLOURS) | set(shapes.SHAPES)
    assert not set(shapes.COLOURS) & set(shapes.SHAPES)
    assert set(shapes.RENDITIONS) == set(shapes.STYLES) - {"photo"} and len(shapes.RENDITIONS) >= 5


@pytest.mark.parametrize("style", shapes.STYLES)
def test_render_is_a_pure_function_of_class_style_and_seed(style):
    first = shapes.render("purple crescent", style, 7).tobytes()
    assert shapes.render("purple crescent", style, 7).tobytes() == first
    assert shapes.render("purple crescent", style, 8).tobytes() != first
    assert shapes.render("purple heart", style, 7).tobytes() != first


def test_every_class_renders_in_every_style_with_its_colour_visible():
    for name in shapes.CLASS_NAMES:
        colour = name.split()[0]
        for style in shapes.STYLES:
            img = shapes.render(name, style, 3)
            assert img.mode == "RGB" and img.size == (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
            assert _colour_pixels(img, colour) >= 10, (name, style)
            assert np.asarray(img).std() > 10, (name, style)  # a shape on a background, not a flat fill


def test_every_prompt_fits_the_text_context():
    """The engine's CoOp text is 8 placeholders + the class name; truncation would cut the name."""
    texts = [" ".join(["X"] * 8) + f" {name}" for name in shapes.CLASS_NAMES]
    tokens = open_clip.tokenize(texts, context_length=77)
    assert int((tokens != 0).sum(1).max()) <= open_clip.get_model_config("seca-shapes")["text_cfg"]["context_length"]


# ------------------------------------------------------------------------------------- dataset


def test_shapes_r_loads_through_the_registry_and_reuses_its_cache(home, monkeypatch):
    cfg = DataConfig(name="shapes-r", train_per_class=10, test_per_class=5)  # capped: renders 1,500 images
    source = load_source(cfg)
    assert source.name == "shapes-r" and source.class_names == list(shapes.CLASS_NAMES)
    assert len(source.train) == 1000 and len(source.test) == 500
    assert source.train.labels == [label for label in range(100) for _ in range(10)]
    assert source.test.labels == [label for label in range(100) for _ in range(5)]
    folder = home / "data" / "shapes-r"
    cache = sorted(folder.glob("*.npy"))
    assert [p.name for p in cache] == ["test-r2-5x32px.npy", "train-r2-10x32px.npy"]
    assert not list(folder.glob(".*"))  # no temporary files left behind

    # each row is the renderer's image of its (class, rendition style, seed); a class's first images cover every style
    for split_name, split, per_class in (("train", source.train, 10), ("test", source.test, 5)):
        styles = {shapes.split_item(split_name, 0, i)[1] for i in range(5)}
        assert styles == set(shapes.RENDITIONS)
        for row in (0, 7, len(split) - 1):
            label, i = divmod(row, per_class)
            name, style, seed = shapes.split_item(split_name, label, i)
            assert shapes.CLASS_NAMES[split.labels[row]] == name
            assert split.image(row).tobytes() == shapes.render(name, style, seed).tobytes()
    train_rows = {hashlib.sha1(row.tobytes()).digest() for row in np.load(cache[1])}
    assert not train_rows.intersection(hashlib.sha1(row.tobytes()).digest() for row in np.load(cache[0]))

    # a second load of the same size reads the cache: it must not render again
    mtimes = [p.stat().st_mtime_ns for p in cache]
    monkeypatch.setattr(shapes, "render_split", lambda split, per_class: pytest.fail("rendered again"))
    again = load_source(cfg)
    assert [p.stat().st_mtime_ns for p in cache] == mtimes
    assert again.test.image(3).tobytes() == source.test.image(3).tobytes()


def _stand_in(split: str, per_class: int) -> np.ndarray:
    """Fast fake renders: train images are all 0, test images all 1."""
    size = shapes.IMAGE_SIZE
    return np.full((100 * per_class, size, size, 3), split == "test", np.uint8)


def test_full_splits_have_the_documented_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(shapes, "render_split", _stand_in)
    source = shapes.load(DataConfig(root=str(tmp_path)))
    assert len(source.train) == 100 * shapes.TRAIN_PER_CLASS and len(source.test) == 100 * shapes.TEST_PER_CLASS
    assert source.test.labels[shapes.TEST_PER_CLASS - 1: shapes.TEST_PER_CLASS + 1] == [0, 1]
    capped = shapes.load(DataConfig(root=str(tmp_path), train_per_class=1000))  # a cap above the split: all
    assert len(capped.train) == 100 * shapes.TRAIN_PER_CLASS


def test_an_interrupted_render_leaves_no_cache_and_a_broken_one_is_rendered_again(tmp_path, monkeypatch):
    monkeypatch.setattr(shapes, "render_split", _stand_in)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(np, "save", interrupted)
        with pytest.raises(KeyboardInterrupt):
            shapes.load(DataConfig(root=str(tmp_path)))
    assert list(tmp_path.iterdir()) == []
    shapes.cache_path(tmp_path, "test", shapes.TEST_PER_CLASS).write_bytes(b"not an array")
    source = shapes.load(DataConfig(root=str(tmp_path)))
    assert np.asarray(source.test.image(0)).max() == 1 and np.asarray(source.train.image(0)).max() == 0


# ------------------------------------------------------------------------------------- small CLIP

# Zero-shot accuracy of the shipped checkpoint, measured once; a changed renderer or checkpoint moves them.
CLEAN_ACCURACY = 0.941
RENDITION_ACCURACY = 0.369


def test_shipped_clip_zero_shot_accuracy(home):
    """Clean photos: high. Renditions (shapes-r test images): lower, far above chance (1%).

    Subsets: 10 images per class each: photos with seeds TEST_SEED0..+9, and the first 10 test
    images per class of shapes-r (2 per rendition style). Template "a good photo of a {}.".
    """
    script = _script()
    clip = load_clip(ModelConfig(name="seca-shapes", pretrained="shapes-clip.pt"), torch.device("cpu"))
    names = list(shapes.CLASS_NAMES)
    renditions = load_source(DataConfig(name="shapes-r", train_per_class=1, test_per_class=10)).test
    clean = script.zeroshot_accuracy(clip, script.clean_split(10), names, "a good photo of a {}.")
    shifted = script.zeroshot_accuracy(clip, renditions, names, "a good photo of a {}.")
    assert clean == pytest.approx(CLEAN_ACCURACY, abs=0.01)
    assert shifted == pytest.approx(RENDITION_ACCURACY, abs=0.01)


def test_shipped_checkpoint_is_small_and_half_precision():
    path = REPO / "engine" / "model" / "weights" / "shapes-clip.pt"
    assert path.stat().st_size <= 10_000_000
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    model, _, _ = open_clip.create_model_and_transforms("seca-shapes", pretrained=str(path))
    assert model.visual.image_size == (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)


def test_shapes_r_class_orders_are_the_documented_seeded_permutations():
    orders = yaml.safe_load((REPO / "presets" / "class_orders.yaml").read_text())["shapes_r"]
    assert orders == [np.random.default_rng(t).permutation(100).tolist() for t in range(3)]
