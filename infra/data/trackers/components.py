"""Per-frame detection for the classical tracker: saturated-colour foreground, split by hue, cut
into connected components. Numpy only (no scipy): connected components are found on row runs with
a small union-find, which is quick for the few, compact blobs of the synthetic videos.

A pixel is foreground when its HSV saturation (max - min) / max is at least `min_saturation` and
its value (max channel) at least `min_value`: the synthetic backgrounds are pure grey (saturation
~0 even after H.264), the objects saturated colours. Foreground pixels are binned by hue into
`hue_bins` equal sectors, the first centred on 0 degrees (red), so the six synthetic colours (red,
yellow, green, cyan, blue, magenta at about 0, 54, 124, 186, 231, 300 degrees) each fall well
inside their own sector of the default six; touching objects of different colours stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    """xyxy, end exclusive (x2 = last column + 1), in the pixels of the analysed frame."""
    area: int
    """Foreground pixels in the component."""
    hue_bin: int
    """Hue sector of the component's pixels."""


def label_components(mask: np.ndarray, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Connected components of a boolean [H, W] mask: (int32 labels, 0 = background, 1..n in
    raster order of each component's first pixel; n). `connectivity` is 4 or 8."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    labels = np.zeros((height, width), dtype=np.int32)
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    starts_r, starts_c = np.nonzero(edges == 1)
    _, ends_c = np.nonzero(edges == -1)  # same row-major order as the starts: one end per start
    if starts_r.size == 0:
        return labels, 0
    runs = list(zip(starts_r.tolist(), starts_c.tolist(), ends_c.tolist()))  # (row, start, end excl.)
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    reach = 1 if connectivity == 8 else 0  # diagonal neighbours touch across one column
    row_first = np.searchsorted(starts_r, np.arange(height + 1)).tolist()
    for row in range(1, height):
        above, here = row_first[row - 1], row_first[row]
        a, b, a_end, b_end = above, here, here, row_first[row + 1]
        while a < a_end and b < b_end:
            _, sa, ea = runs[a]
            _, sb, eb = runs[b]
            if sa < eb + reach and sb < ea + reach:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)  # the root stays the earliest run
            if ea < eb:  # advance whichever run ends first
                a += 1
            else:
                b += 1
    roots: dict[int, int] = {}
    for i, (row, start, end) in enumerate(runs):
        label = roots.setdefault(find(i), len(roots) + 1)
        labels[row, start:end] = label
    return labels, len(roots)


def hue_saturation_value(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HSV of an RGB uint8 frame: hue in degrees [0, 360), saturation [0, 1], value [0, 255]."""
    rgb = frame.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = high - low
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(high == r, ((g - b) / safe) % 6.0,
                   np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    hue = np.where(chroma > 0, hue, 0.0)
    saturation = np.where(high > 0, chroma / np.where(high > 0, high, 1.0), 0.0)
    return hue, saturation, high


def detect(frame: np.ndarray, *, min_saturation: float = 0.35, min_value: float = 50.0, hue_bins: int = 6,
           min_area: int = 12, min_side: int = 1) -> list[Detection]:
    """Coloured blobs of an RGB uint8 frame [H, W, 3], largest first (see the module docstring);
    blobs under `min_area` pixels or with a box side under `min_side` pixels are left out."""
    hue, saturation, value = hue_saturation_value(frame)
    foreground = (saturation >= min_saturation) & (value >= min_value)
    sector = 360.0 / hue_bins
    bins = (np.floor((hue + sector / 2) / sector).astype(np.int64)) % hue_bins
    found = []
    for hue_bin in np.unique(bins[foreground]).tolist():
        labels, count = label_components(foreground & (bins == hue_bin))
        if count == 0:
            continue
        areas = np.bincount(labels.ravel(), minlength=count + 1)
        for label in range(1, count + 1):
            if areas[label] < min_area:
                continue
            rows, cols = np.nonzero(labels == label)
            box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
            if min(box[2] - box[0], box[3] - box[1]) < min_side:
                continue
            found.append(Detection(box, int(areas[label]), int(hue_bin)))
    found.sort(key=lambda d: (-d.area, d.box))
    return found
