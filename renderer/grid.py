"""Side-by-side grids of labelled avatars on one timeline."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    """(rows, cols) for n tiles: one row up to ``max_cols``, then as square as possible."""
    if n <= max_cols:
        return 1, n
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _font(size: int):
    """DejaVu Sans (shipped inside matplotlib, so always here): Pillow's default font has no "²", which drew
    "A²-LLM" captions with a missing-glyph box."""
    try:
        import matplotlib

        return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf", size)
    except (ImportError, OSError):
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                       # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def label_band(labels: list[str], tile_w: int, cols: int, height: int) -> list[np.ndarray]:
    """One [height, tile_w, 3] uint8 caption image per label (drawn once, reused every frame)."""
    font = _font(max(12, height * 2 // 3))
    out = []
    for text in labels:
        img = Image.new("RGB", (tile_w, height), (40, 42, 48))
        draw = ImageDraw.Draw(img)
        box = draw.textbbox((0, 0), text, font=font)
        x = (tile_w - (box[2] - box[0])) // 2
        y = (height - (box[3] - box[1])) // 2 - box[1]
        draw.text((x, y), text, fill=(235, 235, 240), font=font)
        out.append(np.asarray(img))
    return out


class GridComposer:
    """Compose per-system frames into one labelled grid frame.

    Args:
        labels: one caption per tile (system names).
        tile_size: side of each square tile in pixels.
        band: caption height in pixels (0 for no captions).
    """

    def __init__(self, labels: list[str], tile_size: int, band: int = 36):
        self.labels = list(labels)
        self.tile = int(tile_size)
        self.rows, self.cols = grid_shape(len(self.labels))
        self.band = int(band)
        self._captions = label_band(self.labels, self.tile, self.cols, self.band) if self.band else None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of a composed frame."""
        return self.rows * (self.tile + self.band), self.cols * self.tile

    def compose(self, tiles: list[np.ndarray]) -> np.ndarray:
        """[N] x [tile, tile, 3] uint8 -> [H, W, 3] uint8 grid (empty cells stay dark)."""
        if len(tiles) != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} tiles, got {len(tiles)}")
        h, w = self.size
        out = np.full((h, w, 3), 30, np.uint8)
        for k, tile in enumerate(tiles):
            r, c = divmod(k, self.cols)
            y0, x0 = r * (self.tile + self.band), c * self.tile
            if self.band:
                out[y0:y0 + self.band, x0:x0 + self.tile] = self._captions[k]
            out[y0 + self.band:y0 + self.band + self.tile, x0:x0 + self.tile] = tile
        return out
