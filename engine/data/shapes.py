"""Shapes-R: a built-in offline benchmark of coloured shapes, drawn on demand.

100 classes, ``"{colour} {shape}"`` for 10 colours × 10 shapes, indexed in sorted name order
(``CLASS_NAMES``). The renderer draws one class in one of six styles: a clean ``photo`` and five
renditions (``sketch``, ``painting``, ``cartoon``, ``pixelated``, ``noisy``), each with a random
position, scale, rotation and background. The dataset ``shapes-r`` holds the renditions only, as
ImageNet-R holds renditions of ImageNet classes; the package's small CLIP (``seca-shapes``) is
pre-trained on the photo style, so the renditions are a domain shift that adapters can learn.

Every image is a pure function of ``(class, style, seed)``: the random generator is seeded from
all three, and drawing is PIL + numpy only, so the same triple gives the same bytes.
"""
from __future__ import annotations

import colorsys
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.config import DataConfig
from engine.data.source import DataSource, Split
from engine.paths import data_root

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "hexagon", "diamond", "crescent", "arrow")
COLOURS = {  # base RGB; each image jitters it a little, never enough to reach a neighbour
    "red": (215, 30, 35),
    "orange": (250, 140, 0),
    "yellow": (245, 220, 30),
    "green": (35, 160, 55),
    "blue": (30, 70, 215),
    "purple": (130, 40, 175),
    "pink": (255, 135, 195),
    "brown": (115, 65, 25),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
CLASS_NAMES = tuple(sorted(f"{colour} {shape}" for colour in COLOURS for shape in SHAPES))
STYLES = ("photo", "sketch", "painting", "cartoon", "pixelated", "noisy")
RENDITIONS = STYLES[1:]  # the styles of the shapes-r dataset
IMAGE_SIZE = 32  # the input size of the seca-shapes CLIP
SUPERSAMPLE = 3  # draw at 3× and box-filter down, so edges are anti-aliased

# The dataset: per class, image i has style RENDITIONS[i % 5], so any prefix of a class is balanced
# over styles. Train and test seeds come from disjoint ranges, so no image is in both splits.
RENDER_VERSION = 2  # bump when drawing changes: the cache file name carries it
TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 20
TRAIN_SEED0 = 0
TEST_SEED0 = 1_000_000


# ------------------------------------------------------------------------------------- geometry


def _regular(n: int, radius: float, start_deg: float) -> np.ndarray:
    a = np.deg2rad(start_deg) + np.arange(n) * 2 * np.pi / n
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def _star() -> np.ndarray:
    outer, inner = _regular(5, 1.0, -90), _regular(5, 0.42, -54)
    return np.stack([outer, inner], 1).reshape(-1, 2)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y + 2.5], 1) / 16.5  # +2.5 centres the curve vertically


def _crescent() -> np.ndarray:
    """The unit disc minus a disc shifted right, as one polygon: outer arc, then inner arc back."""
    tip = np.deg2rad(50)  # the horns end where the two circles meet, at ±50° on the outer circle
    c = 0.4  # the inner circle's centre (c, 0) and radius are chosen to pass through both horns
    r = math.hypot(math.cos(tip) - c, math.sin(tip))
    outer = np.linspace(tip, 2 * np.pi - tip, 40)
    inner_tip = math.atan2(math.sin(tip), math.cos(tip) - c)
    inner = np.linspace(2 * np.pi - inner_tip, inner_tip, 30)
    pts = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                          np.stack([c + r * np.cos(inner), r * np.sin(inner)], 1)])
    return pts + [0.3, 0.0]  # shift right so the crescent's mass sits near the centre


def _polygon(shape: str) -> np.ndarray:
    """Outline of ``shape`` in unit coordinates (about the unit disc, y pointing down)."""
    if shape == "circle":
        return _regular(48, 0.9, 0)
    if shape == "square":
        return np.array([[-0.75, -0.75], [0.75, -0.75], [0.75, 0.75], [-0.75, 0.75]])
    if shape == "triangle":
        return _regular(3, 1.0, -90) + [0.0, 0.2]
    if shape == "star":
        return _star()
    if shape == "heart":
        return _heart()
    if shape == "cross":
        a, b = 0.3, 0.9
        return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                         [-a, a], [-b, a], [-b, -a], [-a, -a]])
    if shape == "hexagon":
        return _regular(6, 0.92, 0)
    if shape == "diamond":  # taller than wide, so a tilted square never looks like one
        return np.array([[0.0, -1.0], [0.62, 0.0], [0.0, 1.0], [-0.62, 0.0]])
    if shape == "crescent":
        return _crescent()
    if shape == "arrow":
        return np.array([[-0.9, -0.25], [0.1, -0.25], [0.1, -0.62], [0.95, 0.0], [0.1, 0.62],
                         [0.1, 0.25], [-0.9, 0.25]])
    raise ValueError(f"unknown shape {shape!r}")


POLYGONS = {shape: _polygon(shape) for shape in SHAPES}


def _place(rng: np.random.Generator, shape: str, width: int) -> tuple[np.ndarray, float]:
    """The shape's outline in canvas pixels: random size, aspect, tilt and position; and its radius."""
    radius = rng.uniform(0.28, 0.42) * width
    aspect = rng.uniform(0.88, 1.12)
    # tilts stay small: a square turned 45° would be a diamond, an arrow turned 180° still an arrow
    angle = np.deg2rad(rng.uniform(-25, 25))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    margin = 0.9 * radius
    centre = rng.uniform(margin, width - margin, 2)
    return (POLYGONS[shape] * [radius * aspect, radius / aspect]) @ rot.T + centre, radius


# ------------------------------------------------------------------------------------- colour


def _jitter(rng: np.random.Generator, rgb) -> np.ndarray:
    return np.clip(np.asarray(rgb, float) + rng.integers(-12, 13, 3), 0, 255)


def _contrasting(rng: np.random.Generator, fg: np.ndarray, sample: Callable[[], np.ndarray]) -> np.ndarray:
    """A background colour from ``sample`` far enough from ``fg`` that the shape stays visible."""
    for _ in range(30):
        c = sample()
        if np.linalg.norm(c - fg) >= 120:
            return c
    return np.zeros(3) if fg.mean() > 127 else np.full(3, 255.0)  # rare: black or white always works


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation colour of any lightness: greys with a tint, so the shape's colour stands out."""
    return np.clip(rng.uniform(20, 235) + rng.uniform(-28, 28, 3), 0, 255)


def _vivid(rng: np.random.Generator) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.45, 0.9), rng.uniform(0.55, 1.0))
    return np.array(rgb) * 255


def _paper(rng: np.random.Generator, fg: np.ndarray) -> np.ndarray:
    """Cream paper, or a dark chalkboard when the pencil colour is too light for paper."""
    paper = np.array([rng.uniform(228, 252)] * 3) + [4, 2, -6]
    if np.linalg.norm(paper - fg) >= 120:
        return paper
    return np.array([rng.uniform(25, 60)] * 3) + [-5, 10, 0]


# ------------------------------------------------------------------------------------- layers


def _mask(points: np.ndarray, width: int, line: int = 0) -> np.ndarray:
    """A float mask in [0, 1]: the filled polygon, or its closed outline ``line`` pixels wide."""
    img = Image.new("L", (width, width))
    draw = ImageDraw.Draw(img)
    pts = [tuple(p) for p in points]
    if line:
        draw.line(pts + pts[:1], fill=255, width=line, joint="curve")
    else:
        draw.polygon(pts, fill=255)
    return np.asarray(img, np.float32) / 255


def _blur(mask: np.ndarray, radius: float) -> np.ndarray:
    img = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(img, np.float32) / 255


def _smooth_noise(rng: np.random.Generator, width: int, cells: tuple[int, int]) -> np.ndarray:
    """Noise in about [-1, 1], smooth over ``width / cells`` pixels (bilinear upsampling of a grid)."""
    grid = rng.uniform(0, 255, cells).astype(np.uint8)
    img = Image.fromarray(grid).resize((width, width), Image.BILINEAR)
    return np.asarray(img, np.float32) / 127.5 - 1


def _gradient(rng: np.random.Generator, width: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    phi = rng.uniform(0, 2 * np.pi)
    u = np.linspace(-0.5, 0.5, width, dtype=np.float32)
    t = np.clip(u[None, :] * math.cos(phi) + u[:, None] * math.sin(phi) + 0.5, 0, 1)
    return _over(np.broadcast_to(np.float32(a), (width, width, len(a))), b, t)


def _over(base: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (RGB or an image) laid over ``base`` with per-pixel opacity ``alpha``."""
    base = np.asarray(base, np.float32)  # float32 throughout: rendering is dominated by these blends
    return base + (np.asarray(colour, np.float32) - base) * alpha[..., None]


def _shrink(canvas: np.ndarray, size: int) -> Image.Image:
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    return img.resize((size, size), Image.BOX)


def _add_noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    a = np.asarray(img, np.float32) + rng.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------------- styles


def _photo(rng, shape, fg, size, flat=False) -> Image.Image:
    """A shape on a gradient backdrop; with a soft shadow and lighting unless ``flat``."""
    w = size * SUPERSAMPLE
    pts, radius = _place(rng, shape, w)
    bg = _gradient(rng, w, _contrasting(rng, fg, lambda: _muted(rng)), _contrasting(rng, fg, lambda: _muted(rng)))
    mask = _mask(pts, w)
    if flat:
        return _shrink(_over(bg, fg, mask), size)
    offset = rng.uniform(0.04, 0.09, 2) * radius * np.array([1, 1.5])
    shadow = _blur(_mask(pts + offset, w), 0.08 * radius)
    bg = bg * (1 - 0.45 * shadow[..., None])
    light = 1 + 0.15 * _gradient(rng, w, np.array([1.0]), np.array([-1.0]))  # light from one side
    img = _shrink(_over(bg, np.clip(fg * light, 0, 255), mask), size)
    return _add_noise(img, rng, 3)


def _sketch(rng, shape, fg, size) -> Image.Image:
    """Pencil lines in the class colour on paper: a doubled, wobbly outline and sparse hatching."""
    w = size * SUPERSAMPLE
    pts, radius = _place(rng, shape, w)
    canvas = np.broadcast_to(_paper(rng, fg), (w, w, 3)) + rng.normal(0, 4, (w, w, 1))
    line = max(2, round(0.05 * w))
    for _ in range(2):  # two passes of a hand that does not retrace exactly
        wobble = pts + rng.normal(0, 0.02 * radius, pts.shape)
        canvas = _over(canvas, fg, _mask(wobble, w, line) * rng.uniform(0.75, 1.0))
    hatch = Image.new("L", (w, w))
    draw = ImageDraw.Draw(hatch)
    step, slope = rng.uniform(0.1, 0.16) * w, rng.uniform(-1.5, 1.5)
    for x0 in np.arange(-w, 2 * w, step):
        draw.line([(x0, 0), (x0 + slope * w, w)], fill=255, width=max(1, line // 2))
    inside = _mask(pts, w) * np.asarray(hatch, np.float32) / 255
    return _shrink(_over(canvas, fg, 0.55 * inside), size)


def _painting(rng, shape, fg, size) -> Image.Image:
    """Brushwork: a blotchy canvas, a ragged shape edge, and paint that varies along strokes."""
    w = size * SUPERSAMPLE
    pts, radius = _place(rng, shape, w)
    c1, c2 = (_contrasting(rng, fg, lambda: _vivid(rng) * 0.5 + _muted(rng) * 0.5) for _ in range(2))
    canvas = _over(np.broadcast_to(c1, (w, w, 3)), c2, (_smooth_noise(rng, w, (4, 4)) + 1) / 2)
    strokes = _smooth_noise(rng, w, (24, 3))  # long along x, short along y: horizontal brushstrokes
    canvas = canvas * (1 + 0.12 * strokes[..., None])
    ragged = _blur(_mask(pts, w), 0.06 * radius) + 0.25 * _smooth_noise(rng, w, (12, 12))
    mask = np.clip((ragged - 0.5) * 6 + 0.5, 0, 1)
    paint = fg * (1 + 0.18 * _smooth_noise(rng, w, (6, 6))[..., None] + 0.1 * strokes[..., None])
    return _shrink(_over(canvas, np.clip(paint, 0, 255), mask), size)


def _cartoon(rng, shape, fg, size) -> Image.Image:
    """Flat colour, a thick dark outline and a white highlight, on a vivid flat backdrop."""
    w = size * SUPERSAMPLE
    pts, radius = _place(rng, shape, w)
    canvas = np.broadcast_to(_contrasting(rng, fg, lambda: _vivid(rng)), (w, w, 3))
    mask = _mask(pts, w)
    canvas = _over(canvas, fg, mask)
    centre = pts.mean(0) - 0.3 * radius
    y, x = np.ogrid[0:w, 0:w]
    spot = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 < (0.14 * radius) ** 2).astype(np.float32)
    canvas = _over(canvas, (255, 255, 255), 0.7 * spot * mask)
    outline = (10, 10, 10) if fg.mean() > 40 else (235, 235, 235)  # a black shape gets a light outline
    # as thick as a fifth of the radius: thicker would swallow the arrow's shaft
    return _shrink(_over(canvas, outline, _mask(pts, w, max(3, round(0.2 * radius)))), size)


def _pixelated(rng, shape, fg, size) -> Image.Image:
    """The flat photo seen through a coarse grid of 6 to 10 blocks per side."""
    img = _photo(rng, shape, fg, size, flat=True)
    blocks = int(rng.integers(6, 11))
    return img.resize((blocks, blocks), Image.BOX).resize((size, size), Image.NEAREST)


def _noisy(rng, shape, fg, size) -> Image.Image:
    """The photo under heavy sensor noise and a sprinkle of dead pixels."""
    img = _add_noise(_photo(rng, shape, fg, size), rng, rng.uniform(30, 55))
    a = np.asarray(img).copy()
    dead = rng.uniform(size=(size, size)) < 0.03
    a[dead] = rng.choice([0, 255], (int(dead.sum()), 1))
    return Image.fromarray(a)


_DRAW = {"photo": _photo, "sketch": _sketch, "painting": _painting, "cartoon": _cartoon,
         "pixelated": _pixelated, "noisy": _noisy}


def render(class_name: str, style: str, seed: int, size: int = IMAGE_SIZE) -> Image.Image:
    """One RGB image of ``class_name`` (e.g. ``"red circle"``) in ``style``; a pure function of its arguments."""
    colour, shape = class_name.split(" ")
    rng = np.random.default_rng([seed, CLASS_NAMES.index(class_name), STYLES.index(style)])
    return _DRAW[style](rng, shape, _jitter(rng, COLOURS[colour]), size)


# ------------------------------------------------------------------------------------- dataset


def split_spec(split: str) -> tuple[int, int]:
    """``(images per class, first seed)`` of the ``"train"`` or ``"test"`` split."""
    return {"train": (TRAIN_PER_CLASS, TRAIN_SEED0), "test": (TEST_PER_CLASS, TEST_SEED0)}[split]


def split_item(split: str, label: int, index: int) -> tuple[str, str, int]:
    """``(class name, style, seed)`` of the ``index``-th image of class ``label``: styles round-robin."""
    return CLASS_NAMES[label], RENDITIONS[index % len(RENDITIONS)], split_spec(split)[1] + index


def render_split(split: str, per_class: int) -> np.ndarray:
    """The first ``per_class`` images of every class as one uint8 array (rows × H × W × 3), class-major."""
    return np.stack([np.asarray(render(*split_item(split, label, i)))
                     for label in range(len(CLASS_NAMES)) for i in range(per_class)])


def cache_path(root: Path, split: str, per_class: int) -> Path:
    return root / f"{split}-r{RENDER_VERSION}-{per_class}x{IMAGE_SIZE}px.npy"


def cached_split(root: Path, split: str, per_class: int) -> Path:
    """The cache file of the first ``per_class`` images per class, rendered first if missing or unreadable.

    A capped run gets its own small file rather than the full split: a reduced-size first run
    renders only what it uses. Written to a temporary file and renamed into place, so an
    interrupted render leaves no file and concurrent runs each rename a complete one over the other.
    """
    path = cache_path(root, split, per_class)
    try:
        if np.load(path, mmap_mode="r").shape == (len(CLASS_NAMES) * per_class, IMAGE_SIZE, IMAGE_SIZE, 3):
            return path
    except (OSError, ValueError):
        pass  # missing, or not an array: render it
    root.mkdir(parents=True, exist_ok=True)
    images = render_split(split, per_class)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{split}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, images)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a dataset cache is for every user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class ArrayImages:
    """Row ``k`` of a cached .npy file as a PIL image; memory-maps the file on first use.

    A plain class rather than a closure so that a Split can be pickled into data-loader workers.
    """

    def __init__(self, path: Path):
        self.path = path
        self._array = None

    def __call__(self, row: int) -> Image.Image:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return Image.fromarray(np.asarray(self._array[row]))

    def __getstate__(self) -> dict:
        return {"path": self.path, "_array": None}  # each worker maps the file itself


def _split(root: Path, split: str, cap: int) -> Split:
    full, _ = split_spec(split)
    per_class = min(cap, full) if cap else full  # the first images of a class cover every style
    rows = list(range(len(CLASS_NAMES) * per_class))

    def describe(row: int) -> str:
        name, style, seed = split_item(split, *divmod(row, per_class))
        return f"shapes-r {split} image ({name}, {style}, seed {seed})"

    return Split(items=rows, labels=[row // per_class for row in rows],
                 load=ArrayImages(cached_split(root, split, per_class)), describe=describe)


def check(cfg: DataConfig) -> int:
    """The classes are built in; the images are rendered by the engine on first use."""
    return len(CLASS_NAMES)


def load(cfg: DataConfig) -> DataSource:
    """The shapes-r dataset, rendered into ``data_root("shapes-r", cfg.root)`` on first use."""
    root = data_root("shapes-r", cfg.root)
    about = (f"shapes-r renderer r{RENDER_VERSION}, {IMAGE_SIZE}px, styles {', '.join(RENDITIONS)}; "
             f"train {TRAIN_PER_CLASS}/class seeds {TRAIN_SEED0}+, test {TEST_PER_CLASS}/class seeds {TEST_SEED0}+; "
             f"used {cfg.train_per_class or 'all'} train and {cfg.test_per_class or 'all'} test per class\n")
    return DataSource(
        name="shapes-r",
        class_names=list(CLASS_NAMES),
        train=_split(root, "train", cfg.train_per_class),
        test=_split(root, "test", cfg.test_per_class),
        run_files={"shapes-r.txt": about},
    )
