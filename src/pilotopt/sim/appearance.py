"""Visual variants of the world, selectable by name and combinable with '+' (e.g. 'white_line+dark'),
for robustness tests of trained models."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pilotopt.errors import BadInputError

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Appearance:
    line_color: RGB = (200, 30, 30)
    asphalt_color: RGB = (85, 85, 90)
    grass_color: RGB = (70, 125, 55)
    wall_color: RGB = (205, 200, 190)
    sky_top: RGB = (95, 145, 215)
    sky_horizon: RGB = (200, 215, 235)
    walls: bool = False  # walls beside the road instead of open grass
    wall_offset: float = 7.0  # m from the centre line
    wall_height: float = 1.0  # m
    brightness: float = 1.0  # global lighting multiplier
    texture: float = 0.0  # amplitude of world-fixed grain on asphalt and grass (0..0.5)
    shadows: float = 0.0  # darkening inside world-fixed shadow patches (0..0.8)
    pixel_noise: float = 0.0  # std of per-frame sensor noise, in 0..255 intensity units


_VARIANTS: dict[str, dict] = {
    "default": {},
    "white_line": {"line_color": (235, 235, 235)},
    "dark": {"brightness": 0.55},
    "bright": {"brightness": 1.35},
    "dusk": {"brightness": 0.75, "sky_top": (70, 60, 110), "sky_horizon": (230, 150, 110)},
    "textured": {"texture": 0.18},
    "noisy": {"pixel_noise": 10.0},
    "shadows": {"shadows": 0.45},
    "walls": {"walls": True},
}


def variant_names() -> list[str]:
    return list(_VARIANTS)


def appearance(spec: str | Appearance | None = "default") -> Appearance:
    """Parse 'name[+name...]' into an Appearance; later names override earlier ones."""
    if isinstance(spec, Appearance):
        return spec
    result = Appearance()
    for part in (spec or "default").split("+"):
        key = part.strip().lower()
        if key not in _VARIANTS:
            raise BadInputError(
                f"unknown visual variant '{part}'; choose from {', '.join(_VARIANTS)} (combine with '+')"
            )
        result = replace(result, **_VARIANTS[key])
    return result
