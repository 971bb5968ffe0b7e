"""Listener-side perceptual weaknesses and image composition (thesis §7.3, app. F.2).

A weakness is an image transform applied only to what a listener sees; the speaker always
sees the unaltered images. Weaknesses compose (``Compose``) and are looked up by name
(``"normal"``, ``"grayscale"``, ``"blur"``, ``"grayscale+blur"``). The blur radius is not
given in the thesis; it is a parameter (default 3 px on 64 px images, i.e. relative 3/64).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

from lowshot._registry import Registry
from lowshot.errors import ConfigError

Transform = Callable[[Image.Image], Image.Image]
WEAKNESSES: Registry = Registry("perceptual weakness")


@dataclass(frozen=True)
class Identity:
    """Normal vision."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image


@dataclass(frozen=True)
class Grayscale:
    """Colour blindness: ITU-R 601 luma (PIL ``convert("L")``) back to 3 equal channels."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert("L").convert("RGB")


@dataclass(frozen=True)
class GaussianBlur:
    """Blurred vision: Gaussian blur.

    Args:
        radius: blur radius in pixels for a 64 px image; scaled with the image's shorter
            side when ``relative`` (so 3 px at 64 px becomes 15 px at 320 px).
        relative: scale ``radius`` with the image size.
    """

    radius: float = 3.0
    relative: bool = True

    def __call__(self, image: Image.Image) -> Image.Image:
        r = self.radius * (min(image.size) / 64.0 if self.relative else 1.0)
        return image.filter(ImageFilter.GaussianBlur(r))


@dataclass(frozen=True)
class Compose:
    """Apply several weaknesses in order."""

    transforms: tuple[Transform, ...]

    def __call__(self, image: Image.Image) -> Image.Image:
        for t in self.transforms:
            image = t(image)
        return image


WEAKNESSES.register("normal")(Identity)
WEAKNESSES.register("grayscale")(Grayscale)
WEAKNESSES.register("blur")(GaussianBlur)


def make_weakness(name: str, blur_radius: float = 3.0) -> Transform:
    """``"grayscale+blur"`` -> Compose(Grayscale, GaussianBlur(blur_radius))."""
    parts = [p.strip() for p in name.split("+") if p.strip()]
    if not parts:
        raise ConfigError("empty weakness name")
    ts: list[Transform] = []
    for p in parts:
        cls = WEAKNESSES.get(p)
        ts.append(cls(radius=blur_radius) if cls is GaussianBlur else cls())
    return ts[0] if len(ts) == 1 else Compose(tuple(ts))


def side_by_side(images: Sequence[Image.Image], bar_width: int = 8,
                 bar_color: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Concatenate images horizontally with white vertical bars (for single-image MLLMs).

    Images are resized to the first image's height (aspect kept). The bar width is a
    project choice (the thesis gives none).
    """
    h = images[0].height
    resized = [im if im.height == h else im.resize((max(1, round(im.width * h / im.height)), h))
               for im in images]
    width = sum(im.width for im in resized) + bar_width * (len(resized) - 1)
    canvas = Image.new("RGB", (width, h), bar_color)
    x = 0
    for im in resized:
        canvas.paste(im.convert("RGB"), (x, 0))
        x += im.width + bar_width
    return canvas


def draw_red_circle(image: Image.Image, box: tuple[float, float, float, float],
                    width: int = 3) -> Image.Image:
    """Speaker-side visual prompt for RES: a red ellipse as big as the box (Shtedritski et al. 2023).

    Args:
        image: the unaltered image.
        box: ``(x0, y0, x1, y1)`` pixels.
        width: outline width in pixels.
    """
    out = image.convert("RGB").copy()
    ImageDraw.Draw(out).ellipse(tuple(box), outline=(255, 0, 0), width=width)
    return out
