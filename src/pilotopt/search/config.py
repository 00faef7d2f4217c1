"""`pilotopt search` configuration: a YAML file (`--config`) validated by pydantic, on top of the
run whose data, baselines and closed-loop protocol the search reuses (`--run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError, model_validator

from pilotopt.errors import BadInputError
from pilotopt.pipeline.config import _Strict  # the one strict base of every config file
from pilotopt.search.space import parse_space
from pilotopt.yamlfile import read_yaml

OBJECTIVES = {"score": "maximize", "latency": "minimize", "size": "minimize"}


class ScreenSection(_Strict):
    """The cheap first fidelity: offline MSE and latency decide whether a candidate is driven."""

    max_mse_ratio: float = Field(3.0, gt=0)  # candidate MSE / its baseline's MSE on the same frames
    max_frames: Optional[int] = Field(None, ge=1)  # test frames scored (None: the run's offline.max_frames)
    first_drive_min_score: float = Field(50.0, ge=0, le=100)  # below it, one drive is all a candidate gets


class ConstraintsSection(_Strict):
    """max_*: screened before any drive; min_*: judged after the drives (a trial below them stays in
    the trial table with the reason, off the front and out of the recommendation)."""

    max_latency_ms: Optional[float] = Field(None, gt=0)
    max_size_mb: Optional[float] = Field(None, gt=0)
    min_score: Optional[float] = Field(None, ge=0, le=100)  # the search's score: mean over the conditions
    min_autonomy: Optional[float] = Field(None, ge=0, le=100)  # PilotNet autonomy %, mean over the drives


class SearchConfig(_Strict):
    trials: int = Field(30, ge=1)
    seed: int = 0
    # tpe: multi-objective TPE (good with few trials); nsga2: NSGA-II, generations of `population`
    sampler: Literal["tpe", "nsga2"] = "tpe"
    population: int = Field(10, ge=2)  # nsga2 generation size
    startup_trials: int = Field(8, ge=1)  # tpe: random trials before the model takes over
    objectives: list[Literal["score", "latency", "size"]] = Field(default_factory=lambda: list(OBJECTIVES),
                                                                   min_length=1)
    # latency objective: measured p50 on this machine, or MMACs per prediction (machine-independent,
    # so two searches give the same front whatever the load)
    latency: Literal["measured", "macs"] = "measured"
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(1, ge=1)  # ray: trials at once
    address: Optional[str] = None  # ray: an existing cluster ("auto", "ray://host:10001"); None starts one
    trial_timeout_s: float = Field(3600.0, gt=0)
    # per-layer sensitivity by driving for the best int8 ONNX Runtime trial: layers kept in float one
    # at a time (0: off; None: every weight layer)
    sensitivity_layers: Optional[int] = Field(None, ge=0)
    screen: ScreenSection = Field(default_factory=ScreenSection)
    constraints: ConstraintsSection = Field(default_factory=ConstraintsSection)
    space: Optional[dict[str, Any]] = None  # None: search.space.DEFAULT_SPACE

    @model_validator(mode="after")
    def _space_parses(self):
        parse_space(self.space)
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives repeat a name: {self.objectives}")
        return self

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[o] for o in self.objectives]


def load_search_config(path: Path | None = None, overrides: dict | None = None) -> SearchConfig:
    """Defaults <- YAML file (top level, or under `search:`) <- command-line overrides."""
    doc = read_yaml(path, "config file", "; pass an existing YAML file to --config",
                    mapping_of="profile, data, train, ...") if path is not None else {}
    if "search" in doc and isinstance(doc["search"], dict) and len(doc) == 1:
        doc = doc["search"]
    doc = {**doc, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    source = str(path) if path is not None else "search options"
    try:
        return SearchConfig.model_validate(doc)
    except BadInputError as exc:
        raise BadInputError(f"{source}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            raise BadInputError(f"{source}: unknown key '{key}'; remove it or check the spelling "
                                "(see `pilotopt search --help` and docs/search.md)") from None
        got = err.get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
        raise BadInputError(f"{source}: {key}: {err['msg'].rstrip('.')}{shown}") from None
