"""Phantoms: the numpy pictures the synthetic DICOM files hold, every one drawn from a seeded generator.

- Drawing primitives in pixel units: :func:`ellipse` and :func:`capsule` (an anti-aliased mask, or the
  normalised chord length of a rounded body, which is what a radiograph of it shows), :func:`polyline`,
  :func:`gaussian_blur`, :func:`smooth_noise`; :func:`downsample` and :func:`resample` to render big and
  anti-alias, :func:`to_12bit` and :func:`percentile_window` to store and window the result.
- Anatomy: :func:`chest_radiograph`, :func:`hand_radiograph`, :func:`ct_chest_slice`, :func:`brain_mr_slice`
  (the corpus of ``dicom_samples/``), and the labelled phantoms of its fine-tuning sets,
  :func:`brain_tumour_mr`, :func:`growing_hand`, :func:`pediatric_wrist`, :func:`covid_chest`,
  :func:`lung_nodule_series`.
- :func:`phantom`: one silhouette per body part on a normalised grid, for the archive of
  :mod:`radtl.dicom.synthetic.archive`.
- :func:`shape_image`: a disk, square, cross or ring on noise, for tests of pretraining on shapes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "CARPALS",
    "HAND_RAYS",
    "SHAPES",
    "TASK_SHAPE",
    "brain_mr_slice",
    "brain_tumour_mr",
    "capsule",
    "chest_radiograph",
    "covid_chest",
    "ct_chest_slice",
    "downsample",
    "ellipse",
    "gaussian_blur",
    "growing_hand",
    "hand_radiograph",
    "lung_nodule_series",
    "pediatric_wrist",
    "percentile_window",
    "phantom",
    "polyline",
    "resample",
    "shape_image",
    "smooth_noise",
    "to_12bit",
]

#: Rows and columns of the fine-tuning sets' images.
TASK_SHAPE = (64, 64)

# ---------------------------------------------------------------------------
# Drawing primitives (pixel units, (row, col))
# ---------------------------------------------------------------------------


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of every pixel, as floats."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return y.astype(np.float64), x.astype(np.float64)


def ellipse(
    shape: tuple[int, int],
    center: tuple[float, float],
    radii: tuple[float, float],
    angle_deg: float = 0.0,
    profile: str = "mask",
) -> np.ndarray:
    """Ellipse with centre (row, col) and radii (row, col) in pixels.

    ``profile="mask"`` gives an anti-aliased 0..1 mask; ``"thickness"`` gives
    the normalised chord length sqrt(1 - r^2) (projection of an ellipsoid),
    which is what a radiograph of a rounded body looks like.
    """
    y, x = _grid(shape)
    a = math.radians(angle_deg)
    dy, dx = y - center[0], x - center[1]
    ry_ = dy * math.cos(a) - dx * math.sin(a)
    rx_ = dy * math.sin(a) + dx * math.cos(a)
    r = np.sqrt((ry_ / radii[0]) ** 2 + (rx_ / radii[1]) ** 2)
    if profile == "thickness":
        return np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
    signed_px = (r - 1.0) * min(radii)
    return np.clip(0.5 - signed_px, 0.0, 1.0)


def capsule(
    shape: tuple[int, int],
    p0: tuple[float, float],
    p1: tuple[float, float],
    radius: float,
    profile: str = "mask",
) -> np.ndarray:
    """Line segment p0-p1 (row, col) thickened by ``radius`` pixels."""
    y, x = _grid(shape)
    vy, vx = p1[0] - p0[0], p1[1] - p0[1]
    length2 = vy * vy + vx * vx or 1.0
    t = np.clip(((y - p0[0]) * vy + (x - p0[1]) * vx) / length2, 0.0, 1.0)
    d = np.hypot(y - (p0[0] + t * vy), x - (p0[1] + t * vx))
    if profile == "thickness":
        return np.sqrt(np.clip(1.0 - (d / radius) ** 2, 0.0, 1.0))
    return np.clip(radius + 0.5 - d, 0.0, 1.0)


def polyline(shape: tuple[int, int], points: Sequence[tuple[float, float]], radius: float) -> np.ndarray:
    """Union (max) of capsules joining consecutive points (thickness profile)."""
    out = np.zeros(shape)
    for p0, p1 in itertools.pairwise(points):
        np.maximum(out, capsule(shape, p0, p1, radius, "thickness"), out=out)
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D image (kernel radius 3 sigma, edges reflected)."""
    radius = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            acc += w * (p[i : i + n] if axis == 0 else p[:, i : i + n])
        out = acc
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std spatially correlated noise."""
    n = gaussian_blur(rng.standard_normal(shape), sigma)
    return (n - n.mean()) / n.std()


def to_12bit(values: np.ndarray, lo: float, hi: float, out_lo: int = 100, out_hi: int = 3900) -> np.ndarray:
    """Linearly map [lo, hi] to [out_lo, out_hi], clip to 12 bits, round to uint16."""
    scaled = out_lo + (values - lo) * (out_hi - out_lo) / (hi - lo)
    return np.clip(np.rint(scaled), 0, 4095).astype(np.uint16)


def percentile_window(arr: np.ndarray, lo: float = 1, hi: float = 99) -> tuple[int, int]:
    """The (centre, width) of a window spanning the ``lo`` to ``hi`` percentiles of ``arr``."""
    p_lo, p_hi = np.percentile(arr, [lo, hi])
    return int(np.rint((p_lo + p_hi) / 2)), int(np.rint(p_hi - p_lo))  # both round half to even, as round()


def downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by an integer ``factor`` (render at a higher resolution, then anti-alias)."""
    rows, cols = img.shape
    return img.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


def resample(
    img: np.ndarray, out_shape: tuple[int, int], center: tuple[float, float], zoom: float, angle_deg: float = 0.0
) -> np.ndarray:
    """Bilinear resampling: the output grid is centred on ``center`` (row, col) of ``img``,
    ``zoom`` input pixels per output pixel, rotated by ``angle_deg``; ``img`` is blurred first
    (sigma ``zoom / 2``) so that shrinking does not alias."""
    src = gaussian_blur(img, zoom / 2) if zoom > 1.5 else img
    y, x = _grid(out_shape)
    y -= (out_shape[0] - 1) / 2
    x -= (out_shape[1] - 1) / 2
    a = math.radians(angle_deg)
    sy = np.clip(center[0] + zoom * (y * math.cos(a) - x * math.sin(a)), 0, src.shape[0] - 1.001)
    sx = np.clip(center[1] + zoom * (y * math.sin(a) + x * math.cos(a)), 0, src.shape[1] - 1.001)
    y0, x0 = np.floor(sy).astype(int), np.floor(sx).astype(int)
    fy, fx = sy - y0, sx - x0
    return (
        src[y0, x0] * (1 - fy) * (1 - fx)
        + src[y0 + 1, x0] * fy * (1 - fx)
        + src[y0, x0 + 1] * (1 - fy) * fx
        + src[y0 + 1, x0 + 1] * fy * fx
    )


class _Frame:
    """Maps a phantom's own (row, col) units to image pixels: origin, scale and rotation."""

    def __init__(self, origin: tuple[float, float], scale: float, angle_deg: float) -> None:
        self.origin, self.scale, self.angle = origin, scale, angle_deg
        a = math.radians(angle_deg)
        self.cos, self.sin = math.cos(a), math.sin(a)

    def __call__(self, r: float, c: float) -> tuple[float, float]:
        return (
            self.origin[0] + self.scale * (r * self.cos - c * self.sin),
            self.origin[1] + self.scale * (r * self.sin + c * self.cos),
        )

    def along(self, p: tuple[float, float], direction: tuple[float, float], length: float) -> tuple[float, float]:
        return p[0] + direction[0] * length, p[1] + direction[1] * length


# ---------------------------------------------------------------------------
# Anatomy
# ---------------------------------------------------------------------------


def chest_radiograph(rng: np.random.Generator, shape=(256, 224)) -> np.ndarray:
    """PA chest 'attenuation' map (higher = more attenuating), roughly 0..3."""
    rows, cols = shape
    cx = cols / 2
    att = 1.6 * ellipse(shape, (rows * 0.62, cx), (rows * 0.62, cols * 0.47), 0, "thickness")
    att += 0.6 * capsule(shape, (-20, cx), (40, cx), 24, "thickness")  # neck
    # lungs (air: reduce attenuation), heart (patient's left = image right)
    for side in (-1, 1):
        att -= 1.1 * ellipse(
            shape, (rows * 0.50, cx + side * cols * 0.22), (rows * 0.30, cols * 0.17), side * 6, "thickness"
        )
    att += 0.55 * ellipse(shape, (rows * 0.66, cx + cols * 0.06), (rows * 0.14, cols * 0.17), -20, "thickness")
    # bones
    bone = 0.5 * capsule(shape, (-10, cx), (rows + 10, cx), 9, "thickness")  # spine
    for side in (-1, 1):
        clavicle = ((rows * 0.20, cx + side * 10), (rows * 0.15, cx + side * cols * 0.40))
        bone += 0.6 * capsule(shape, *clavicle, 4, "thickness")
        bone += 0.8 * ellipse(shape, (rows * 0.19, cx + side * cols * 0.49), (18, 14), 0, "thickness")  # humeral heads
        for k in range(9):  # ribs: arcs running laterally and downward
            y0 = rows * (0.22 + 0.062 * k)
            pts = [
                (y0 + rows * 0.10 * t**1.5 - 5 * math.sin(math.pi * t), cx + side * (10 + t * cols * 0.38))
                for t in np.linspace(0.0, 1.0, 8)
            ]
            bone += 0.35 * polyline(shape, pts, 2.5)
    att = np.clip(att, 0, None) + bone
    att += 0.05 * smooth_noise(rng, shape, 6.0) * (att > 0.05)
    return att


def hand_radiograph(rng: np.random.Generator, shape=(256, 192), mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """PA hand: returns (soft tissue thickness, bone thickness), fingers up."""
    rows, cols = shape
    soft = np.zeros(shape)
    bone = np.zeros(shape)
    # forearm, palm
    forearm = capsule(shape, (rows * 0.80, cols * 0.52), (rows * 1.2, cols * 0.52), cols * 0.20, "thickness")
    np.maximum(soft, forearm, out=soft)
    np.maximum(soft, ellipse(shape, (rows * 0.60, cols * 0.50), (rows * 0.19, cols * 0.25), 0, "thickness"), out=soft)
    bone += capsule(shape, (rows * 0.80, cols * 0.40), (rows * 1.1, cols * 0.38), 9, "thickness")  # radius
    bone += 0.8 * capsule(shape, (rows * 0.81, cols * 0.64), (rows * 1.1, cols * 0.67), 6, "thickness")  # ulna
    for cy, cx_, r in [
        (0.72, 0.36, 8),
        (0.71, 0.46, 7),
        (0.72, 0.56, 7),
        (0.73, 0.64, 6),
        (0.665, 0.34, 7),
        (0.66, 0.44, 7),
        (0.66, 0.54, 7),
        (0.665, 0.63, 6),
    ]:
        bone += 0.8 * ellipse(shape, (rows * cy, cols * cx_), (r, r * 0.9), 0, "thickness")  # carpals
    # fingers (index..little) and thumb: (base row, base col, angle deg, phalanx lengths)
    fingers = [
        (0.46, 0.33, -12, (30, 20, 14)),
        (0.44, 0.47, -3, (33, 22, 15)),
        (0.45, 0.60, 6, (30, 21, 14)),
        (0.48, 0.72, 15, (24, 16, 12)),
    ]
    for by, bx, ang, lengths in fingers:
        base = (rows * by, cols * bx)
        a = math.radians(ang)
        direction = (-math.cos(a), math.sin(a))
        tip_len = sum(lengths) + 4
        tip = (base[0] + direction[0] * tip_len, base[1] + direction[1] * tip_len)
        np.maximum(soft, capsule(shape, base, tip, 8.5, "thickness"), out=soft)
        # metacarpal from carpus to finger base
        mc0 = (rows * 0.64, cols * (0.42 + 0.5 * (bx - 0.5)))
        bone += _tubular(shape, mc0, (base[0] + 6, base[1]), 4.5)
        pos = base
        for i, length in enumerate(lengths):
            end = (pos[0] + direction[0] * length, pos[1] + direction[1] * length)
            bone += _tubular(shape, (pos[0] - direction[0] * 2, pos[1] - direction[1] * 2), end, 3.8 - 0.5 * i)
            pos = (end[0] + direction[0] * 3, end[1] + direction[1] * 3)  # joint space
    # thumb
    t0, t1, t2, t3 = [(rows * fy, cols * fx) for fy, fx in ((0.66, 0.24), (0.57, 0.14), (0.47, 0.08), (0.40, 0.05))]
    np.maximum(soft, capsule(shape, (rows * 0.66, cols * 0.30), t3, 10, "thickness"), out=soft)
    bone += _tubular(shape, t0, t1, 5.0) + _tubular(shape, (t1[0] - 3, t1[1] - 1.5), t2, 4.2)
    bone += _tubular(shape, (t2[0] - 3, t2[1] - 1), t3, 3.5)
    soft = soft + 0.04 * smooth_noise(rng, shape, 5.0) * (soft > 0.02)
    if mirror:
        soft, bone = soft[:, ::-1].copy(), bone[:, ::-1].copy()
    return np.clip(soft, 0, None), bone


def _tubular(shape, p0, p1, radius) -> np.ndarray:
    """Long bone: dense cortex, lighter medulla."""
    return capsule(shape, p0, p1, radius, "thickness") - 0.55 * capsule(shape, p0, p1, radius * 0.55, "thickness")


def ct_chest_slice(rng: np.random.Generator, z_index: int, shape=(256, 256)) -> np.ndarray:
    """Axial chest CT slice in HU (float)."""
    rows, cols = shape
    s = rows / 256.0
    cy, cx = rows * 0.52, cols / 2
    hu = np.full(shape, -1000.0)
    body = ellipse(shape, (cy, cx), (80 * s, 112 * s))
    inner = ellipse(shape, (cy, cx), (72 * s, 103 * s))
    hu = hu * (1 - body) + (-100.0) * body  # subcutaneous fat
    hu = hu * (1 - inner) + 45.0 * inner  # muscle / mediastinum
    lung_scale = 0.80 + 0.05 * z_index  # lungs grow towards the bases
    lungs = np.zeros(shape)
    for side in (-1, 1):
        lungs = np.maximum(
            lungs,
            ellipse(shape, (cy - 6 * s, cx + side * 50 * s), (56 * s * lung_scale, 38 * s * lung_scale), side * -8),
        )
    heart = ellipse(shape, (cy + 2 * s, cx + 14 * s), (26 * s, 30 * s), 20) * (z_index >= 2)
    lungs = np.clip(lungs - heart, 0, 1)
    lung_hu = -850.0 + 25.0 * smooth_noise(rng, shape, 3.0)
    # pulmonary vessels: small soft-tissue dots inside the lungs
    vessels = np.zeros(shape)
    for _ in range(28):
        vy, vx = rng.uniform(0.25, 0.75) * rows, rng.uniform(0.15, 0.85) * cols
        vessels = np.maximum(vessels, ellipse(shape, (vy, vx), (rng.uniform(1.2, 2.8) * s,) * 2))
    lung_hu = lung_hu * (1 - vessels) + 30.0 * vessels
    hu = hu * (1 - lungs) + lung_hu * lungs
    hu = hu * (1 - heart) + 40.0 * heart
    aorta = ellipse(shape, (cy + 36 * s, cx + 20 * s), (10 * s, 10 * s))  # descending aorta, patient left
    hu = hu * (1 - aorta) + 180.0 * aorta
    # spine: cortical ring, cancellous core, canal, posterior elements
    vb_c = (cy + 50 * s, cx)
    cortex = ellipse(shape, vb_c, (15 * s, 17 * s))
    core = ellipse(shape, vb_c, (12 * s, 14 * s))
    canal = ellipse(shape, (cy + 72 * s, cx), (6 * s, 7 * s))
    post = np.clip(
        capsule(shape, (cy + 68 * s, cx - 12 * s), (cy + 79 * s, cx - 2 * s), 3 * s)
        + capsule(shape, (cy + 68 * s, cx + 12 * s), (cy + 79 * s, cx + 2 * s), 3 * s),
        0,
        1,
    )
    hu = hu * (1 - cortex) + 900.0 * cortex
    hu = hu * (1 - core) + 260.0 * core
    hu = hu * (1 - post) + 750.0 * post
    hu = hu * (1 - canal) + 20.0 * canal
    # ribs around the thoracic wall + sternum
    for ang in np.linspace(-150, 150, 9):
        if abs(ang) < 30:
            continue
        a = math.radians(ang + 90 + 4 * z_index)
        ry, rx = cy + 70 * s * math.sin(a), cx + 98 * s * math.cos(a)
        rib = ellipse(shape, (ry, rx), (4 * s, 7 * s), math.degrees(a) + 90)
        hu = hu * (1 - rib) + 700.0 * rib
    sternum = ellipse(shape, (cy - 68 * s, cx), (5 * s, 12 * s))
    hu = hu * (1 - sternum) + 600.0 * sternum
    hu += 10.0 * rng.standard_normal(shape) + 6.0 * smooth_noise(rng, shape, 1.5)
    return np.clip(hu, -1024, 3071)


def brain_mr_slice(rng: np.random.Generator, z_index: int, shape=(192, 192), scale: float = 1.0) -> np.ndarray:
    """Axial T2-weighted brain slice, signal in 0..4095."""
    rows, cols = shape
    s = rows / 192.0 * scale
    c = (rows * 0.5, cols * 0.5)
    y, x = _grid(shape)
    theta = np.arctan2(y - c[0], x - c[1])
    img = np.zeros(shape)

    def put(mask: np.ndarray, value: float | np.ndarray) -> None:
        nonlocal img
        img = img * (1 - mask) + value * mask

    put(ellipse(shape, c, (86 * s, 70 * s)), 1500.0)  # scalp / fat
    put(ellipse(shape, c, (80 * s, 64 * s)), 60.0)  # skull (dark)
    put(ellipse(shape, c, (75 * s, 59 * s)), 2700.0)  # CSF in sulci
    # cortex with gyral modulation
    rr = np.hypot((y - c[0]) / (72 * s), (x - c[1]) / (56 * s)) * (1 + 0.035 * np.sin(11 * theta))
    put(np.clip(0.5 - (rr - 1) * 56 * s, 0, 1), 1750.0)
    rr = np.hypot((y - c[0]) / (58 * s), (x - c[1]) / (43 * s)) * (1 + 0.06 * np.sin(9 * theta + 0.5))
    put(np.clip(0.5 - (rr - 1) * 43 * s, 0, 1), 1100.0)  # white matter
    vent = 0.6 + 0.25 * math.sin(math.pi * z_index / 4)  # ventricle size varies by slice
    for side in (-1, 1):
        put(ellipse(shape, (c[0] - 4 * s, c[1] + side * 8 * s), (22 * s * vent, 6 * s * vent), side * 14), 2800.0)
    bias = 1.0 + 0.12 * smooth_noise(rng, shape, 30.0)
    img = img * bias
    sigma = 22.0
    img = np.hypot(img + sigma * rng.standard_normal(shape), sigma * rng.standard_normal(shape))  # Rician
    return np.clip(img, 0, 4095)


def brain_tumour_mr(rng: np.random.Generator, tumour: str, shape: tuple[int, int] = TASK_SHAPE) -> np.ndarray:
    """Axial T2 brain slice (0..~1300, background 0) with a glioma, meningioma, pituitary mass or none.

    glioma: irregular bright mass with oedema inside one hemisphere; meningioma: round,
    homogeneous bright mass on the inner skull edge; pituitary: small bright blob on the
    midline below the centre (sella region); notumor: none.
    """
    rows, cols = shape
    scale = rng.uniform(0.86, 1.0)
    img = brain_mr_slice(rng, int(rng.integers(0, 5)), shape, scale)
    s = rows / 192.0 * scale
    c = (rows / 2, cols / 2)
    bright = rng.uniform(3300, 3700)
    texture = 1.0 + 0.06 * smooth_noise(rng, shape, 1.0)
    if tumour == "glioma":
        side = rng.choice([-1, 1])
        cy = c[0] + rng.uniform(-0.35, 0.35) * 58 * s
        cx = c[1] + side * rng.uniform(0.30, 0.55) * 43 * s
        r = rng.uniform(3.5, 5.5)
        mass = ellipse(shape, (cy, cx), (r, r * rng.uniform(0.65, 1.0)), rng.uniform(0, 180))
        for _ in range(3):
            a, d = rng.uniform(0, 2 * math.pi), r * rng.uniform(0.5, 0.9)
            lobe = ellipse(shape, (cy + d * math.sin(a), cx + d * math.cos(a)), (r * rng.uniform(0.35, 0.6),) * 2)
            mass = np.maximum(mass, lobe)
        oedema = np.clip(1.6 * gaussian_blur(mass, 1.8), 0, 1)
        img = img * (1 - oedema) + 2300.0 * oedema
        img = img * (1 - mass) + bright * texture * mass
        if rng.random() < 0.5:  # necrotic core
            core = ellipse(shape, (cy, cx), (r * 0.4, r * 0.4))
            img = img * (1 - core) + 1700.0 * core
    elif tumour == "meningioma":
        a = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(4.0, 5.5)
        cy = c[0] + (75 * s - 0.8 * r) * math.sin(a)
        cx = c[1] + (59 * s - 0.8 * r) * math.cos(a)
        mass = ellipse(shape, (cy, cx), (r, r))
        img = img * (1 - mass) + bright * mass
    elif tumour == "pituitary":
        r = rng.uniform(2.4, 3.4)
        mass = ellipse(shape, (c[0] + rng.uniform(0.40, 0.55) * 72 * s, c[1] + rng.uniform(-1, 1)), (r, r * 1.2))
        img = img * (1 - mass) + bright * mass
    elif tumour != "notumor":
        raise ValueError(tumour)
    sigma = 30.0
    img = np.hypot(img + sigma * rng.standard_normal(shape), sigma * rng.standard_normal(shape))
    img *= ellipse(shape, c, (86 * s + 1, 70 * s + 1)) > 0.5  # black background outside the head
    img *= 0.3 * rng.uniform(0.85, 1.05)  # receiver gain: values up to about 1300 of the 12 bits
    img = np.roll(img, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    return np.clip(img, 0, 4095)


CARPALS = [
    (-3.0, 2.0, 3),  # capitate
    (-3.0, 8.0, 4),  # hamate
    (4.0, 4.0, 30),  # triquetrum
    (4.5, -2.5, 42),  # lunate
    (-3.5, -11.0, 54),  # trapezium
    (-3.5, -4.5, 60),  # trapezoid
    (4.0, -9.0, 66),  # scaphoid
    (2.0, 10.5, 120),  # pisiform
]
#: Rays of a left hand, thumb on the image left: (base row, base col, angle deg, segment lengths).
HAND_RAYS = [
    (-5.0, -13.0, -40, (17.0, 12.0, 9.0)),  # thumb: metacarpal, proximal, distal
    (-7.0, -9.0, -7, (29.0, 21.0, 12.0, 9.0)),  # index
    (-7.0, -3.0, -1, (31.0, 23.0, 14.0, 10.0)),  # middle
    (-7.0, 3.0, 5, (29.0, 21.0, 13.0, 9.0)),  # ring
    (-6.0, 8.5, 12, (26.0, 17.0, 10.0, 8.0)),  # little
]


def growing_hand(
    rng: np.random.Generator, age_months: float, male: bool, shape: tuple[int, int] = (128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """PA left hand of a child with bone age ``age_months``: (soft tissue, bone) thickness maps.

    With bone age the hand grows, bones get thicker and denser, the phalangeal and
    radial epiphyses widen and fuse (the dark physis closes), and the carpal
    ossification centres appear one by one and grow. Boys' hands are a little larger.
    """
    t = float(np.clip((age_months - 12) / 204, 0, 1))
    size = 0.76 * (0.70 + 0.30 * t + (0.03 if male else 0.0)) * rng.uniform(0.98, 1.02)
    f = _Frame((shape[0] * 0.70 + rng.uniform(-3, 3), shape[1] * 0.52 + rng.uniform(-4, 4)), size, rng.uniform(-8, 8))
    thick = 0.80 + 0.40 * t
    gap = 2.2 * max(0.0, 1 - t / 0.85)  # physis width, closed from bone age ~15.5 y
    epi = float(np.clip((age_months - 10) / 30, 0, 1))  # phalangeal epiphyses ossify in year 1-3
    soft = np.zeros(shape)
    bone = np.zeros(shape)
    np.maximum(soft, capsule(shape, f(6, 0), f(90, 0), 16.5 * size, "thickness"), out=soft)
    np.maximum(soft, ellipse(shape, f(-21, -1), (24 * size, 21 * size), -f.angle, "thickness"), out=soft)

    def epiphysis(p: tuple[float, float], direction: tuple[float, float], width: float, height: float) -> np.ndarray:
        angle = math.degrees(math.atan2(direction[1], -direction[0]))  # ellipse long axis across the bone
        return ellipse(shape, p, (height * size, width * size), -(f.angle + angle), "thickness")

    for k, (br, bc, angle, lengths) in enumerate(HAND_RAYS):
        a = math.radians(angle)
        d = (-math.cos(a), math.sin(a))
        pos = (br, bc)
        radii = (3.4, 2.9, 2.4, 2.0) if k else (3.6, 2.9, 2.3)
        tip = f.along(pos, d, sum(lengths) + 2.5 * len(lengths) + 3)
        skin = f.along(pos, d, 0.6 * lengths[0] if k else 0.0)
        np.maximum(soft, capsule(shape, f(*skin), f(*tip), (5.5 if k else 6.5) * size, "thickness"), out=soft)
        for j, (length, radius) in enumerate(zip(lengths, radii, strict=True)):
            r = radius * thick
            start = pos
            if j > 0 and epi > 0:  # epiphysis at the proximal end of each phalanx
                h = 0.8 + 0.7 * t
                bone += epi * 0.9 * epiphysis(f(*f.along(pos, d, h)), d, r * (0.55 + 0.5 * t), h)
                start = f.along(pos, d, 2 * h + gap)
            end = f.along(pos, d, length)
            bone += _tubular(shape, f(*start), f(*end), r * size)
            pos = f.along(end, d, 2.5)  # joint space
    # forearm: radius (thumb side) and ulna, with their distal epiphyses
    radius_top, ulna_top = (10.0, -8.0), (12.0, 8.0)
    bone += _tubular(shape, f(*radius_top), f(95, -9), 5.5 * thick * size)
    bone += 0.85 * _tubular(shape, f(*ulna_top), f(95, 10), 3.8 * thick * size)
    for top, r, onset in [(radius_top, 5.5, 12), (ulna_top, 3.8, 84)]:
        grow = float(np.clip((age_months - onset) / 48, 0, 1))
        if grow > 0:
            h = 1.0 + 1.2 * t
            p = (top[0] - r * thick * 0.6 - gap - h, top[1])
            bone += grow * epiphysis(f(*p), (-1.0, 0.0), r * thick * (0.45 + 0.6 * t), h)
    for cr, cc, onset in CARPALS:
        grow = float(np.clip((age_months - onset) / 84, 0, 1))
        if grow > 0:
            rad = 3.8 * grow**0.6 + 0.6
            bone += 0.85 * ellipse(shape, f(cr, cc), (rad * size, rad * 0.9 * size), -f.angle, "thickness")
    soft = soft + 0.03 * smooth_noise(rng, shape, 5.0) * (soft > 0.02)
    return np.clip(soft, 0, None), bone * (0.75 + 0.55 * t)


def pediatric_wrist(
    rng: np.random.Generator,
    age_years: float,
    osteopenia: bool,
    fracture: bool,
    metal: bool,
    shape: tuple[int, int] = (128, 128),
) -> np.ndarray:
    """Frontal left wrist of a child, attenuation map (about 0..2.5; metal 3).

    Radius and ulna (tubes: a cortex around a lighter medulla, physis and epiphysis),
    carpal bones and metacarpal bases. Osteopenia: the bone is much less dense and its
    cortex thinner, so bone is darker against the soft tissue.
    """
    t = float(np.clip(age_years / 17, 0, 1))
    size = 0.95 * (0.85 + 0.15 * t) * rng.uniform(0.96, 1.04)
    f = _Frame((shape[0] * 0.47 + rng.uniform(-4, 4), shape[1] * 0.5 + rng.uniform(-4, 4)), size, rng.uniform(-6, 6))
    if osteopenia:
        density, cortex, lucency = rng.uniform(0.55, 0.70), rng.uniform(0.14, 0.22), 0.75
    else:
        density, cortex, lucency = rng.uniform(0.95, 1.10), rng.uniform(0.32, 0.42), 0.45

    def tube(p0: tuple[float, float], p1: tuple[float, float], r: float) -> np.ndarray:
        return capsule(shape, f(*p0), f(*p1), r * size, "thickness") - lucency * capsule(
            shape, f(*p0), f(*p1), r * (1 - cortex) * size, "thickness"
        )

    soft = np.maximum(capsule(shape, f(4, 0), f(130, 0), 23 * size, "thickness"),
                      ellipse(shape, f(-32, 0), (36 * size, 28 * size), -f.angle, "thickness"))
    bone = np.zeros(shape)
    gap = 2.4 * max(0.0, 1 - t / 0.95)
    for top, r, col1, onset in [((12.0, -12.0), 9.0, -13.0, 1.0), ((14.0, 11.0), 6.0, 12.0, 7.0)]:
        bone += tube(top, (135.0, col1), r)  # radius, then ulna
        grow = float(np.clip((age_years - onset) / 5, 0, 1))
        if grow > 0:
            h = 1.5 + 1.5 * t
            p = f(top[0] - 0.7 * r - gap - h, top[1])
            epiphysis = ellipse(shape, p, (h * size, r * (0.5 + 0.5 * t) * size), -f.angle, "thickness")
            bone += grow * (1 - 0.5 * lucency) * epiphysis
    for cr, cc, onset in CARPALS:  # reuse the hand's carpal layout, a bit larger
        grow = float(np.clip((age_years * 12 - onset) / 84, 0, 1))
        if grow > 0:
            rad = 5.0 * grow**0.6 + 0.8
            carpal = ellipse(shape, f(1.3 * cr - 4, 1.3 * cc), (rad * size, rad * 0.9 * size), -f.angle, "thickness")
            bone += (1 - 0.5 * lucency) * carpal
    for k, (col0, col1) in enumerate([(-19.0, -30.0), (-11.0, -13.0), (-3.0, -3.0), (5.0, 7.0), (12.0, 16.0)]):
        bone += tube((-14.0 + 4 * (k == 0), col0), (-70.0 + 20 * (k == 0), col1), 4.6 - 0.3 * (k == 4))
    if fracture:  # thin lucent line across the distal radius metaphysis, slightly oblique
        row = rng.uniform(20, 32)
        tilt = rng.uniform(-5, 5)
        line = capsule(shape, f(row - tilt, -24), f(row + tilt, 0), 0.9 * size)
        bone *= 1 - 0.8 * line
    att = 0.55 * soft + density * bone
    if metal:  # plate with screws on the radius shaft
        plate = capsule(shape, f(35, -23), f(80, -24), 2.2 * size)
        for row in (42, 56, 70):
            plate = np.maximum(plate, capsule(shape, f(row, -26), f(row + 1, -2), 1.3 * size))
        att = att * (1 - plate) + 3.0 * plate
    return att + 0.02 * smooth_noise(rng, shape, 4.0) * (soft > 0.02)


def covid_chest(rng: np.random.Generator, finding: str, shape: tuple[int, int] = TASK_SHAPE) -> np.ndarray:
    """PA chest attenuation (about 0..3) at ``shape``.

    COVID: hazy opacities in the periphery of both lower zones; Lung_Opacity: one dense
    lobar consolidation in one upper/mid zone; Normal: clear lungs.
    """
    rows, cols = 256, 224
    cx = cols / 2
    att = chest_radiograph(rng, (rows, cols))
    big = (rows, rows)  # square film: air on both sides
    pad = (rows - cols) // 2
    att = np.pad(att, [(0, 0), (pad, pad)])
    cx += pad
    lungs = np.zeros(big)
    for side in (-1, 1):
        lungs += ellipse(big, (rows * 0.50, cx + side * cols * 0.22), (rows * 0.30, cols * 0.17), side * 6)
    lungs = gaussian_blur(np.clip(lungs, 0, 1), 4.0)
    opacity = np.zeros(big)
    if finding == "COVID":
        for side in (-1, 1):
            amp = rng.uniform(0.40, 0.60)
            for _ in range(int(rng.integers(2, 4))):
                centre = (rows * rng.uniform(0.60, 0.74), cx + side * cols * rng.uniform(0.27, 0.33))
                blob = ellipse(big, centre, (rng.uniform(22, 36), rng.uniform(14, 22)), rng.uniform(-30, 30))
                opacity += amp * rng.uniform(0.7, 1.0) * gaussian_blur(blob, 10.0)
        opacity *= np.clip(1 + 0.3 * smooth_noise(rng, big, 5.0), 0.5, 1.4)  # patchy ground glass
    elif finding == "Lung_Opacity":
        side = rng.choice([-1, 1])
        centre = (rows * rng.uniform(0.36, 0.50), cx + side * cols * 0.21)
        opacity = 0.9 * gaussian_blur(ellipse(big, centre, (38, 28), rng.uniform(-20, 20)), 3.0)
    elif finding != "Normal":
        raise ValueError(finding)
    att = att + np.clip(opacity, 0, None) * lungs
    centre = (rows / 2 + rng.uniform(-8, 8), cx + rng.uniform(-8, 8))
    att = resample(att, shape, centre, rows / shape[0] * rng.uniform(0.94, 1.06), rng.uniform(-4, 4))
    att *= rng.uniform(0.93, 1.07)
    return att + 0.015 * rng.standard_normal(shape) * (att > 0.05)


def lung_nodule_series(
    rng: np.random.Generator, shape: tuple[int, int] = TASK_SHAPE, slices: int = 12, spacing: float = 5.0
) -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """HU slices of one chest and its nodules as (column, row, slice, diameter in mm), positions in voxels.

    Nodules are soft-tissue spheres inside the lungs, so the nodule list is the ground truth of their masks.

    Args:
        rng: the random generator.
        shape: rows and columns of a slice.
        slices: number of slices.
        spacing: voxel size in mm, in-plane and between slices (the nodules' diameters are in mm).
    """
    images = [ct_chest_slice(rng, min(z // 3, 4), shape) for z in range(slices)]
    rows, cols = shape
    y, x = _grid(shape)
    nodules = []
    for _ in range(int(rng.integers(1, 3))):
        diameter = float(rng.uniform(15.0, 30.0))
        side = rng.choice([-1, 1])
        centre = (
            cols / 2 + side * rng.uniform(8.0, 14.0) * cols / 64,
            rows * 0.50 + rng.uniform(-8.0, 6.0) * rows / 64,
            float(rng.uniform(3.0, slices - 4.0)),
        )
        radius = diameter / 2 / spacing
        for z, hu in enumerate(images):
            r2 = radius**2 - (z - centre[2]) ** 2
            if r2 <= 0:
                continue
            inside = np.clip(math.sqrt(r2) + 0.5 - np.hypot(x - centre[0], y - centre[1]), 0, 1)
            hu[:] = hu * (1 - inside) + (35.0 + 15.0 * rng.standard_normal(shape)) * inside
        nodules.append((*centre, diameter))
    return images, nodules


# ---------------------------------------------------------------------------
# Body-part silhouettes on a normalised grid ([-1, 1] both ways), for the archive
# ---------------------------------------------------------------------------


def _oval(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """Inside of an axis-aligned ellipse on the normalised grid (a hard edge, unlike :func:`ellipse`)."""
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, half_width: float, half_height: float) -> np.ndarray:
    """Inside of an axis-aligned rectangle on the normalised grid."""
    return (np.abs(x - cx) <= half_width) & (np.abs(y - cy) <= half_height)


def _head(x, y):
    return 0.4 * _oval(x, y, 0, 0, 0.7, 0.8) + 0.95 * (_oval(x, y, 0, 0, 0.8, 0.9) & ~_oval(x, y, 0, 0, 0.7, 0.8))


def _chest(x, y):
    lungs = _oval(x, y, -0.4, -0.05, 0.28, 0.5) | _oval(x, y, 0.4, -0.05, 0.28, 0.5)
    return 0.6 * (_oval(x, y, 0, 0, 0.9, 0.7) & ~lungs)


def _abdomen(x, y):
    body = 0.45 * _oval(x, y, 0, 0, 0.9, 0.75)
    return body + 0.3 * _oval(x, y, -0.35, -0.1, 0.3, 0.25) + 0.25 * _oval(x, y, 0, 0.5, 0.12, 0.12)


def _brain(x, y):
    radius = np.hypot(x, y)
    return _oval(x, y, 0, 0, 0.75, 0.85) * (0.55 + 0.35 * np.cos(10.0 * radius))


def _lumbar_spine(x, y):
    return 0.8 * sum(_box(x, y, 0, cy, 0.25, 0.12) for cy in (-0.72, -0.36, 0.0, 0.36, 0.72)).astype(bool)


def _knee(x, y):
    bones = _box(x, y, 0, -0.5, 0.3, 0.42) | _box(x, y, 0, 0.5, 0.26, 0.42)
    return 0.75 * bones + 0.2 * _oval(x, y, 0.45, 0, 0.1, 0.12)


def _hand(x, y):
    fingers = sum(_box(x, y, cx, -0.45, 0.07, 0.4) for cx in (-0.52, -0.26, 0.0, 0.26, 0.52)).astype(bool)
    return 0.75 * (fingers | _box(x, y, 0, 0.35, 0.6, 0.35))


def _wrist(x, y):
    carpals = sum(_box(x, y, cx, -0.55, 0.1, 0.1) for cx in (-0.3, 0.0, 0.3)).astype(bool)
    return 0.8 * (carpals | _box(x, y, -0.2, 0.35, 0.12, 0.55) | _box(x, y, 0.22, 0.4, 0.08, 0.5))


_PHANTOMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "HEAD": _head, "CHEST": _chest, "ABDOMEN": _abdomen, "BRAIN": _brain, "LSPINE": _lumbar_spine,
    "KNEE": _knee, "HAND": _hand, "WRIST": _wrist,
}


def phantom(body_part: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size)`` picture in [0, 1] of ``body_part``: its own shape, shifted, scaled and noisy."""
    scale = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.1, 0.1, 2)
    axis = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid((axis - shift[1]) / scale, (axis - shift[0]) / scale, indexing="ij")
    picture = np.asarray(_PHANTOMS[body_part](x, y), dtype=np.float64)
    return np.clip(picture + rng.normal(0.0, 0.04, picture.shape), 0.0, 1.0)


# ---------------------------------------------------------------------------
# Shapes on noise, for tests of pretraining and fine-tuning on shapes
# ---------------------------------------------------------------------------

SHAPES = ("disk", "square", "cross", "ring")


def shape_image(
    kind: str, size: int, rng: np.random.Generator, contrast: float = 1.0, noise: float = 0.1
) -> np.ndarray:
    """One ``(size, size)`` uint8 image of a shape of :data:`SHAPES` at a random place and size, on noise.

    Args:
        kind: ``"disk"``, ``"square"``, ``"cross"`` or ``"ring"``.
        size: rows and columns.
        rng: the random generator.
        contrast: the shape's brightness factor.
        noise: standard deviation of the Gaussian background noise (mean 0.15 of full scale).
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    r = rng.uniform(0.18, 0.3) * size
    dx, dy = np.abs(x - cx), np.abs(y - cy)
    mask = {
        "disk": dx**2 + dy**2 < r**2,
        "square": (dx < r * 0.8) & (dy < r * 0.8),
        "cross": ((dx < r / 3) & (dy < r)) | ((dy < r / 3) & (dx < r)),
        "ring": (dx**2 + dy**2 < r**2) & (dx**2 + dy**2 > (0.55 * r) ** 2),
    }[kind]
    image = mask * rng.uniform(0.6, 1.0) * contrast + rng.normal(0.15, noise, (size, size))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
