"""Target devices: where a variant's latency is measured when the machine running pilotopt is not
the car. A target runs `pilotopt-edge` (the edge package: NumPy plus one runtime) on the device and
hands back its bench, so every latency carries the device it was taken on.

    ssh://user@host[:port][?python=PATH&threads=N&identity=KEY&known_hosts=FILE]
    ray:RESOURCE[?threads=N&address=HOST:PORT]   (a Ray node started with --resources '{"RESOURCE": 1}')

Each scheme is one module here that subclasses `Target` and registers itself with
`register_scheme` (ssh.py, ray_node.py); `parse_target` picks the module by the spec's scheme.
`measure.measure_on_target` copies a variant's deploy folder there (content-addressed: a folder
the device holds already is not sent again) and runs the bench."""

from __future__ import annotations

import importlib
import io
import pkgutil
import re
import tarfile
from pathlib import Path
from typing import Callable, ClassVar
from urllib.parse import parse_qs

from pilotopt_edge import __version__ as EDGE_VERSION

from pilotopt.errors import BadInputError
from pilotopt.records import Device

EDGE_INSTALL = ("install the edge package there: copy pilotopt's edge/ folder to the device and run "
                "pip install './edge[onnxruntime]' (or [litert], [openvino]); README, 'Measuring on your device'")


class TargetError(BadInputError):
    """The device could not be reached or used: one line naming the fix."""


class DeviceReport:
    """What `pilotopt-edge device` printed there: the device and the runtimes it found."""

    def __init__(self, doc: dict, node_id: str | None = None) -> None:
        self.device = Device.from_json({**doc["device"], **({"node_id": node_id} if node_id else {})},
                                       "the device's report")
        self.runtimes: dict[str, str | None] = dict(doc.get("runtimes") or {})
        self.edge_version = str(doc.get("edge_version") or "?")

    def missing(self) -> list[str]:
        return [name for name, version in sorted(self.runtimes.items()) if version is None]


class Target:
    """A device reached by one scheme. Subclasses implement `report`, `has`, `send` and `bench`;
    every failure raises TargetError with one line naming the fix."""

    scheme: ClassVar[str] = ""

    def __init__(self, spec: str, threads: int = 1) -> None:
        self.spec = spec  # as given, settings included (what a kept result is keyed by)
        self.name = spec.split("?", 1)[0]  # the device without its settings: what messages and records say
        self.threads = threads
        self._report: DeviceReport | None = None

    @property
    def slug(self) -> str:
        """The target as a folder name: the device, and a digest of its settings (another Python or
        thread count on the same device keeps its results apart)."""
        import hashlib

        digest = hashlib.sha256(self.spec.encode()).hexdigest()[:8]
        return (re.sub(r"[^A-Za-z0-9._-]+", "_", self.name).strip("_")[:100] or "target") + f"-{digest}"

    def describe(self) -> DeviceReport:
        """The device and its runtimes, asked once per Target; its edge package must be this
        pilotopt's (the bench's protocol and the deploy folder's format change with it)."""
        if self._report is None:
            report = self.report()
            if report.edge_version != EDGE_VERSION:
                raise TargetError(f"{self.name} has pilotopt-edge {report.edge_version}, this pilotopt needs {EDGE_VERSION}: "
                                  + EDGE_INSTALL)
            self._report = report
        return self._report

    def report(self) -> DeviceReport:
        raise NotImplementedError

    def has(self, address: str) -> bool:
        """Whether the device holds the deploy folder with this content address already."""
        raise NotImplementedError

    def send(self, folder: Path, address: str) -> None:
        """Copy `folder` there under `address`, atomically (a cut copy is never taken as done)."""
        raise NotImplementedError

    def bench(self, address: str, iterations: int, warmup: int) -> dict:
        """`pilotopt-edge bench --check --json` of the folder at `address`, run there: its JSON."""
        raise NotImplementedError

    def measure(self, variant_folder: Path, variant, store: Path, **kw):
        """The variant's TargetLatency here (measure.measure_on_target): what evaluate calls, so the
        offline stage needs no import of this package."""
        from pilotopt.targets.measure import measure_on_target  # it imports deploy, a layer above evaluate

        return measure_on_target(self, variant_folder, variant, store, **kw)


_SCHEMES: dict[str, Callable[[str, str, dict[str, str]], Target]] = {}


def register_scheme(scheme: str):
    """Class decorator: `scheme` specs (`scheme://...` or `scheme:...`) build this Target with
    (spec, the part after the scheme, the query's settings)."""
    def deco(cls):
        cls.scheme = scheme
        _SCHEMES[scheme] = cls.from_spec
        return cls
    return deco


def _load() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "measure":
            importlib.import_module(f"{__name__}.{info.name}")


def scheme_names() -> list[str]:
    _load()
    return sorted(_SCHEMES)


def parse_target(spec: str) -> Target:
    """The Target a spec names, or one line saying what a spec looks like."""
    _load()
    spec = (spec or "").strip()
    m = re.match(r"^([a-z][a-z0-9+.-]*):(//)?(.*)$", spec)
    if not m or m.group(1) not in _SCHEMES:
        raise BadInputError(f"unknown target '{spec}'; use ssh://user@host[:port][?python=PATH&threads=N] or "
                            "ray:RESOURCE (schemes: " + ", ".join(sorted(_SCHEMES)) + ")")
    rest, _, query = m.group(3).partition("?")
    settings = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        settings[key] = values[-1]
    return _SCHEMES[m.group(1)](spec, rest, settings)


def take_settings(spec: str, settings: dict[str, str], known: dict[str, str]) -> dict[str, str]:
    """The query's settings, refusing a key the scheme does not know (one line listing them)."""
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise BadInputError(f"target '{spec}': unknown setting(s) {', '.join(unknown)}; it takes "
                            + ", ".join(f"{k} ({v})" for k, v in known.items()))
    return settings


def pack(folder: Path) -> bytes:
    """The deploy folder's files as one tar stream (what a target unpacks under its address)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(Path(folder).iterdir()):
            tar.add(f, arcname=f.name)
    return buf.getvalue()


def threads_of(spec: str, settings: dict[str, str]) -> int:
    raw = settings.get("threads", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise BadInputError(f"target '{spec}': threads must be an integer >= 1, got '{raw}'")
    return int(raw)
