"""What a search takes from the run it starts from: the run's config (data, closed-loop protocol,
technique defaults), its data and its baselines, so a trial is measured exactly as the run's fixed
menu was and can reuse the run's finished fine-tunes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from pilotopt.errors import BadInputError
from pilotopt.pipeline.config import load_config
from pilotopt.search.config import SearchConfig
from pilotopt.search.space import parse_space
from pilotopt.techniques import techniques
from pilotopt.variants import read_variants


@dataclass(frozen=True)
class Baseline:
    name: str  # its variant name in the run (torch, keras, or a given model's)
    source: str  # the model file the run's techniques started from
    kind: str  # artifact kind (torch_checkpoint, keras_h5, ...)
    technique: str  # the as-is technique that makes its variant (torch, keras)
    framework: str
    arch: str | None = None
    arch_args: dict = field(default_factory=dict)
    contract: dict | None = None


@dataclass
class SearchContext:
    run: Path
    out: Path
    search: SearchConfig
    baselines: dict[str, Baseline]
    target: str | None = None  # a device to time the trials on instead of the run's own target

    @cached_property
    def cfg(self):
        """The run's pipeline config, with drives run in this process's own executor (a search
        trial is the unit of parallelism), and `target` as its device when given."""
        cfg = load_config(self.run / "config.yaml")
        if self.target:
            cfg.target.device = self.target
        cfg.executor.name = "local"
        if self.search.executor == "ray" and self.search.workers > 1:
            cfg.executor.workers = 1
        return cfg

    @cached_property
    def search_space(self):
        return parse_space(self.search.space)

    @property
    def data_roots(self) -> list[Path]:
        cfg = self.cfg
        return [Path(p) for p in cfg.data.path] if cfg.data.path else [self.run / "data"]

    @property
    def variants_dir(self) -> Path:
        return self.out / "variants"

    def to_dict(self) -> dict:
        return {"run": str(self.run), "out": str(self.out), "search": self.search.model_dump(mode="json"),
                "baselines": {k: asdict(v) for k, v in self.baselines.items()}}

    @classmethod
    def from_dict(cls, doc: dict) -> "SearchContext":
        return cls(Path(doc["run"]), Path(doc["out"]), SearchConfig.model_validate(doc["search"]),
                   {k: Baseline(**v) for k, v in doc["baselines"].items()})


def open_run(run: Path | str, out: Path | str | None, search: SearchConfig,
             target: str | None = None) -> SearchContext:
    """The run folder `pilotopt run` wrote (config.yaml, variants/); its baselines are the as-is
    variants (technique torch / keras / the given model's) with status ok."""
    run = Path(run)
    if not (run / "config.yaml").is_file() or not (run / "variants").is_dir():
        raise BadInputError(f"'{run}' is not a finished pilotopt run (no config.yaml and variants/); "
                            "run `pilotopt run --out DIR` first and pass that DIR to --run")
    known = techniques()
    baselines = {}
    for _, v in read_variants(run / "variants"):
        tech = known.get(v.technique or "")
        if v.status != "ok" or v.baseline is not None or tech is None or len(v.steps or [v.name]) > 1:
            continue
        source = (v.record or {}).get("source")
        if not source or not Path(source).exists():
            continue
        kind = (v.record or {}).get("input_kind") or tech.produces
        baselines[v.name] = Baseline(v.name, str(Path(source).resolve()), kind, tech.name, v.framework,
                                     v.arch, dict(v.arch_args or {}), v.contract)
    if not baselines:
        raise BadInputError(f"'{run / 'variants'}' holds no baseline variant (torch, keras or a given model) "
                            "whose model file still exists; rerun `pilotopt run`")
    out = Path(out) if out is not None else run / "search"
    return SearchContext(run.resolve(), out.resolve(), search, baselines, target)
