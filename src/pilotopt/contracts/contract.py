"""The InputContract type, its YAML form and the preset registry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pilotopt_edge.feeding import OutputMap as EdgeOutputMap
from pilotopt_edge.feeding import encode_pixels

from pilotopt.errors import BadInputError, one_line
from pilotopt.preprocess import PILOTNET_GEOMETRY, V_MAX, V_MIN, W_MAX, W_MIN, Geometry
from pilotopt.yamlfile import read_yaml

LAYOUTS = ("nhwc", "nchw")
CHANNELS = ("rgb", "bgr")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # albumentations / torchvision Normalize() defaults
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALINGS = {  # name -> (pixel multiplier, mean, std): x' = (x * multiplier - mean) / std
    "raw": (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "unit": (1.0 / 255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "imagenet": (1.0 / 255.0, IMAGENET_MEAN, IMAGENET_STD),
}
DEFAULT_CONTRACT = "pilotopt"


@dataclass(frozen=True)
class OutputMap:
    """Model output -> physical units: v = v_scale * out[v_index] + v_offset (same for w)."""

    v_index: int = 0
    w_index: int = 1
    v_scale: float = V_MAX - V_MIN
    v_offset: float = V_MIN
    w_scale: float = W_MAX - W_MIN
    w_offset: float = W_MIN

    def __post_init__(self) -> None:
        if {self.v_index, self.w_index} != {0, 1}:
            raise BadInputError(f"outputs.order must name v and w once each, got indices {self.v_index}, {self.w_index}")
        if self.v_scale == 0 or self.w_scale == 0:
            raise BadInputError("an output scale of 0 maps every prediction to one value; fix outputs in the contract")

    @classmethod
    def normalized(cls, v_bounds=(V_MIN, V_MAX), w_bounds=(W_MIN, W_MAX), order=("v", "w")) -> "OutputMap":
        vi, wi = _order(order)
        return cls(vi, wi, v_bounds[1] - v_bounds[0], v_bounds[0], w_bounds[1] - w_bounds[0], w_bounds[0])

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """a, b with pilotopt-normalized = a * out[[v_index, w_index]] + b (exactly 1, 0 for pilotopt's own)."""
        a = np.array([self.v_scale / (V_MAX - V_MIN), self.w_scale / (W_MAX - W_MIN)])
        b = np.array([(self.v_offset - V_MIN) / (V_MAX - V_MIN), (self.w_offset - W_MIN) / (W_MAX - W_MIN)])
        return a, b

    @property
    def identity(self) -> bool:
        a, b = self._affine()
        return self.v_index == 0 and bool(np.all(a == 1.0) and np.all(b == 0.0))

    def to_normalized(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if self.identity:
            return y
        a, b = self._affine()
        return (y[..., [self.v_index, self.w_index]] * a + b).astype(np.float32)

    def from_normalized(self, y: np.ndarray) -> np.ndarray:
        """pilotopt-normalized labels -> the model's own output space (fine-tuning targets)."""
        y = np.asarray(y, dtype=np.float32)
        if self.identity:
            return y
        a, b = self._affine()
        native = ((y - b) / a).astype(np.float32)
        out = np.empty_like(native)
        out[..., self.v_index], out[..., self.w_index] = native[..., 0], native[..., 1]
        return out

    def to_dict(self) -> dict:
        order = ["v", "w"] if self.v_index == 0 else ["w", "v"]
        return {"order": order, "v": {"scale": self.v_scale, "offset": self.v_offset},
                "w": {"scale": self.w_scale, "offset": self.w_offset}}


RANGE_MARGIN = 0.05  # normalized outputs this far outside [0, 1] are out of range


def out_of_range_share(y: np.ndarray, margin: float = RANGE_MARGIN) -> float:
    """Share of predictions with v or w outside [0, 1] (+- margin) in pilotopt's normalized space: a
    model fed with the wrong contract (wrong scaling, wrong output units) shows up here."""
    y = np.asarray(y, dtype=np.float64).reshape(-1, 2)
    if len(y) == 0:
        return 0.0
    bad = (y < -margin) | (y > 1 + margin) | ~np.isfinite(y)
    return float(bad.any(axis=1).mean())


def _order(order) -> tuple[int, int]:
    names = [str(o).strip().lower() for o in order]
    if sorted(names) != ["v", "w"]:
        raise BadInputError(f"outputs.order must be [v, w] or [w, v], got {list(order)}")
    return names.index("v"), names.index("w")


@dataclass(frozen=True)
class InputContract:
    name: str = DEFAULT_CONTRACT
    geometry: Geometry = PILOTNET_GEOMETRY
    channels: str = "rgb"
    layout: str = "nhwc"
    pixel_scale: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    outputs: OutputMap = OutputMap()
    size_from_model: bool = False  # resize to the size the model declares (toolkits that pass img_shape)
    clip: tuple = ()  # ((v_lo, v_hi), (w_lo, w_hi)) physical commands clipped, only when a contract asks
    description: str = ""
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was detected or assumed

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise BadInputError(f"layout '{self.layout}' is not one of {', '.join(LAYOUTS)}")
        if self.channels not in CHANNELS:
            raise BadInputError(f"channels '{self.channels}' is not one of {', '.join(CHANNELS)}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise BadInputError("mean and std must have 3 values each and std no zero")

    # -- shapes --------------------------------------------------------------------------------
    def sample_shape(self, sequence_length: int = 1) -> tuple[int, ...]:
        """The model's per-sample input shape under this contract."""
        g = self.geometry
        frame = (g.height, g.width, 3) if self.layout == "nhwc" else (3, g.height, g.width)
        return frame if sequence_length <= 1 else (sequence_length, *frame)

    @property
    def raw_pixels(self) -> bool:
        return self.channels == "rgb" and self.layout == "nhwc" and self.pixel_scale == 1.0 and \
            self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0)

    # -- the value half ------------------------------------------------------------------------
    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8-valued RGB images (N, H, W, 3) or (N, T, H, W, 3) -> float32 model input (the edge
        package's `encode_pixels`: the car and pilotopt feed a model one way)."""
        if self.raw_pixels:
            return np.ascontiguousarray(images, dtype=np.float32)
        return encode_pixels(images, self.channels, self.layout, self.pixel_scale, self.mean, self.std)

    def commands(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw model outputs (N, 2) -> physical (v m/s, w rad/s) as the edge package applies them:
        the output map, unclipped unless the contract has a `clip`."""
        o = self.outputs
        clip = {"v": self.clip[0], "w": self.clip[1]} if self.clip else None
        edge = EdgeOutputMap(o.v_index, o.w_index, o.v_scale, o.v_offset, o.w_scale, o.w_offset, clip)
        return edge.commands(y)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Model outputs (N, 2) -> pilotopt-normalized (v, w), unclipped (as the labels' space)."""
        return self.outputs.to_normalized(y)

    def encode_labels(self, y: np.ndarray) -> np.ndarray:
        return self.outputs.from_normalized(y)

    # -- identity ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        g = self.geometry
        return {"name": self.name, "crop": [g.crop_top, g.crop_bottom], "size": [g.height, g.width],
                "interpolation": g.interpolation, "channels": self.channels, "layout": self.layout,
                "pixel_scale": self.pixel_scale, "mean": list(self.mean), "std": list(self.std),
                "outputs": self.outputs.to_dict(), "size_from_model": self.size_from_model,
                **({"clip": {"v": list(self.clip[0]), "w": list(self.clip[1])}} if self.clip else {}),
                "notes": list(self.notes)}

    @property
    def digest(self) -> str:
        doc = self.to_dict()
        doc.pop("notes")
        doc.pop("name")
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def sized_to(self, declared: tuple | None) -> "InputContract":
        """This contract resized to a declared per-sample input (when it takes its size from the model)."""
        if not self.size_from_model or not declared or len(declared) < 3:
            return self
        frame = tuple(declared[-3:])
        if (frame[0] if self.layout == "nchw" else frame[-1]) not in (3, None):
            return self  # channels not where this layout has them: the shape check names both layouts
        h, w = (frame[1], frame[2]) if self.layout == "nchw" else (frame[0], frame[1])
        g = self.geometry
        if h is None or w is None or (h, w) == (g.height, g.width):
            return self
        return dataclasses.replace(self, geometry=Geometry(g.crop_top, g.crop_bottom, int(h), int(w), g.interpolation))

    def with_notes(self, *notes: str) -> "InputContract":
        return dataclasses.replace(self, notes=tuple(dict.fromkeys((*self.notes, *notes))))

    def summary(self) -> str:
        g = self.geometry
        sc = next((k for k, v in SCALINGS.items() if v == (self.pixel_scale, self.mean, self.std)), "custom")
        return (f"{self.name}: rows {g.crop_top}:{g.crop_bottom} -> {g.height}x{g.width} {g.interpolation}, "
                f"{self.channels.upper()} {self.layout.upper()}, values {sc}")


# -- YAML / dict form ------------------------------------------------------------------------------
_KEYS = {"name", "base", "crop", "size", "interpolation", "channels", "layout", "scaling", "pixel_scale", "mean",
         "std", "outputs", "description", "size_from_model", "clip"}


def from_dict(doc: dict, where: str = "input contract") -> InputContract:
    """A contract from a mapping (the YAML file, or variant.json's copy). `base: PRESET` starts from a
    preset; `scaling: raw|unit|imagenet` or `pixel_scale` + `mean` + `std`; `outputs:` as
    `{order: [v, w], v: {min, max} | {scale, offset}, w: ...}`; `crop: [top, bottom]`, `size: [H, W]`."""
    if not isinstance(doc, dict):
        raise BadInputError(f"{where} must be a mapping of contract keys")
    unknown = sorted(set(doc) - _KEYS - {"notes"})
    if unknown:
        raise BadInputError(f"unknown key(s) {', '.join(unknown)} in {where}; valid keys: {', '.join(sorted(_KEYS))}")
    base = get_contract(doc["base"]) if doc.get("base") else InputContract()
    try:
        g = base.geometry
        crop = doc.get("crop", [g.crop_top, g.crop_bottom])
        size = doc.get("size", [g.height, g.width])
        geometry = Geometry(int(crop[0]), int(crop[1]), int(size[0]), int(size[1]),
                            str(doc.get("interpolation", g.interpolation)))
        pixel_scale, mean, std = base.pixel_scale, base.mean, base.std
        if "scaling" in doc:
            if doc["scaling"] not in SCALINGS:
                raise BadInputError(f"scaling '{doc['scaling']}' in {where} is not one of {', '.join(SCALINGS)}; "
                                    "or give pixel_scale, mean and std")
            pixel_scale, mean, std = SCALINGS[doc["scaling"]]
        pixel_scale = float(doc.get("pixel_scale", pixel_scale))
        mean = tuple(float(v) for v in doc.get("mean", mean))
        std = tuple(float(v) for v in doc.get("std", std))
        outputs = _outputs(doc["outputs"], where) if "outputs" in doc else base.outputs
        return InputContract(name=str(doc.get("name", f"{base.name}+custom" if doc.get("base") else "custom")),
                             geometry=geometry,
                             channels=str(doc.get("channels", base.channels)).lower(),
                             layout=str(doc.get("layout", base.layout)).lower(), pixel_scale=pixel_scale,
                             mean=mean, std=std, outputs=outputs,
                             size_from_model=bool(doc.get("size_from_model", base.size_from_model)),
                             clip=_clip(doc["clip"], where) if doc.get("clip") else base.clip,
                             description=str(doc.get("description", base.description)),
                             notes=tuple(doc.get("notes") or ()))
    except BadInputError:
        raise
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise BadInputError(f"{where} is malformed ({one_line(exc)}); see `pilotopt list contracts`") from None


def _clip(doc, where: str) -> tuple:
    """`clip: {v: [lo, hi], w: [lo, hi]}` in physical units: the commands a contract asks to clip."""
    if not isinstance(doc, dict) or set(doc) - {"v", "w"}:
        raise BadInputError(f"clip in {where} must be {{v: [lo, hi], w: [lo, hi]}} in m/s and rad/s")
    lim = []
    for q, default in (("v", (-1e9, 1e9)), ("w", (-1e9, 1e9))):
        lo, hi = (float(x) for x in doc.get(q, default))
        if lo > hi:
            raise BadInputError(f"clip.{q} in {where} has low {lo} above high {hi}")
        lim.append((lo, hi))
    return tuple(lim)


def _outputs(doc: dict, where: str) -> OutputMap:
    if not isinstance(doc, dict):
        raise BadInputError(f"outputs in {where} must be a mapping: {{order: [v, w], v: {{min, max}}, w: ...}}")
    vi, wi = _order(doc.get("order", ["v", "w"]))
    out = {}
    for q, (lo, hi) in (("v", (V_MIN, V_MAX)), ("w", (W_MIN, W_MAX))):
        spec = doc.get(q, {"min": lo, "max": hi})
        if spec == "physical":
            spec = {"scale": 1.0, "offset": 0.0}
        if not isinstance(spec, dict) or not ({"min", "max"} <= set(spec) or {"scale", "offset"} <= set(spec)):
            raise BadInputError(f"outputs.{q} in {where} must be {{min, max}}, {{scale, offset}} or 'physical'")
        if "min" in spec:
            out[q] = (float(spec["max"]) - float(spec["min"]), float(spec["min"]))
        else:
            out[q] = (float(spec["scale"]), float(spec["offset"]))
    return OutputMap(vi, wi, out["v"][0], out["v"][1], out["w"][0], out["w"][1])


# -- presets ---------------------------------------------------------------------------------------
_PRESETS: dict[str, InputContract] = {}


def register_contract(contract: InputContract) -> InputContract:
    _PRESETS[contract.name] = contract
    return contract


def _load_presets() -> None:
    import importlib
    import pkgutil

    import pilotopt.contracts as pkg  # the preset modules, found on demand (each imports this module)

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("preset_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


def contract_names() -> list[str]:
    _load_presets()
    return sorted(_PRESETS)


def get_contract(name: str) -> InputContract:
    _load_presets()
    if name not in _PRESETS:
        raise BadInputError(f"unknown input contract '{name}'; choose a preset ({', '.join(sorted(_PRESETS))}) "
                            "or pass a YAML file")
    return _PRESETS[name]


def load_contract(spec: "str | Path | dict | InputContract | None") -> InputContract:
    """A preset name, a YAML file path, a mapping, or a contract (None: pilotopt's own)."""
    if spec is None:
        return get_contract(DEFAULT_CONTRACT)
    if isinstance(spec, InputContract):
        return spec
    if isinstance(spec, dict):
        return from_dict(spec)
    text = str(spec)
    if text.endswith((".yaml", ".yml", ".json")) or Path(text).is_file():
        path = Path(text)
        doc = read_yaml(path, "input contract file", "; pass a preset name or a YAML file")
        return from_dict(doc or {}, where=f"input contract '{path}'")
    return get_contract(text)
