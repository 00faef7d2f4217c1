"""What the stages hand each other, typed: an offline row, a drive, a variant's summary.

Evaluate writes `OfflineRow`s (results.json of the offline stage), the drive jobs write `Drive`s
(one JSON file per drive), and `pilotopt.decide` turns both into `VariantSummary`s, the figures the
decision, the report and the search read. Each record is a frozen pydantic model: `from_json`
validates a file's dict (a wrong or missing field is a one-line error naming the record and the
field, not a KeyError three stages later), `to_json` gives the dict back as it was written (fields
a writer left out stay out), and a new field is added here once, with its type.

Reading a measured value by a string key (`row["error"]["mse_mean"]`) belongs here only: every
other module reads attributes (`row.error.mse_mean`), so a renamed field fails at once everywhere.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pilotopt.errors import BadInputError

OFFLINE_SCHEMA = "pilotopt.results/1"  # the offline stage's results.json, whose "variants" are OfflineRows
# one drive's JSON; 3: commands applied as the output map gives them, unclipped (the edge package's
# rule); drives of /2 clipped them to the labels' range, so they are driven again
DRIVE_SCHEMA = "pilotopt.closed_loop/3"
# what the simulator computes for the same drive settings: part of every cached drive's key, raised
# whenever those settings give another trajectory (2: a repetition's sensor noise from a GaussianBank,
# camera noise rounded to the nearest level instead of truncated)
SIM_VERSION = 2
STATUSES = ("ok", "failed", "skipped")
DEFAULT_CONDITION = "default"
BRIDGE_SCHEMA = "pilotopt.ros_bridge/1"  # `pilotopt sim ros-bridge --out`


class Record(BaseModel):
    """A frozen record with JSON in and out. Unknown fields are refused: a writer that adds a
    field without declaring it here fails its own tests, not a reader's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_json(cls, doc: Any, what: str | None = None):
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(the record)"
            raise BadInputError(f"{what or cls.__name__}: field '{where}': {err['msg']}; the file was written by "
                                f"another pilotopt version or edited by hand: rerun the stage that wrote it") from None

    def to_json(self) -> dict:
        return self.model_dump(mode="json", exclude_unset=True)


# ----------------------------------------------------------------------------- offline
class LatencyStats(Record):
    n: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float


class Latency(Record):
    model: Optional[LatencyStats] = None  # the predictor call on one preprocessed frame
    brain_step: Optional[LatencyStats] = None  # camera frame in, command out (what a car waits for)


class Size(Record):
    bytes: Optional[int] = None
    gzip_bytes: Optional[int] = None
    params: Optional[int] = None
    nonzero_params: Optional[int] = None
    params_source: Optional[str] = None


class Error(Record):
    """Offline error on the test frames: MSE of the normalized outputs, MAE in physical units."""

    n: int
    mse_v: float
    mse_w: float
    mse_mean: float
    mae_v_mps: Optional[float] = None
    mae_w_radps: Optional[float] = None


class Throughput(Record):
    batch: int
    fps: Optional[float] = None
    calls: Optional[int] = None
    batch_p50_ms: Optional[float] = None
    batch_mean_ms: Optional[float] = None


class Memory(Record):
    rss_before_load: Optional[float] = None
    peak_rss: Optional[float] = None
    model_share: Optional[float] = None


class CrossCheck(Record):
    """Agreement with the variant's baseline on the same frames, and the ratios against it."""

    baseline: str
    n: int
    max_abs_diff: float
    mse: float
    max_abs_diff_v: Optional[float] = None
    max_abs_diff_w: Optional[float] = None
    speedup_p50: Optional[float] = None
    size_ratio: Optional[float] = None


class StepSize(Record):
    technique: Optional[str] = None
    size_bytes: Optional[int] = None
    check_max_abs_diff: Optional[float] = None


class Device(Record):
    """Where a figure was measured: the machine and the process (pilotopt_edge.bench.device, run
    there), and on a Ray target the node. `emulated` names the emulator when the CPU is emulated."""

    hostname: str
    pid: Optional[int] = None
    machine: str
    cpu: str
    cores: Optional[int] = None
    system: str
    python: str
    executable: Optional[str] = None  # the Python that ran it (a venv's, an emulator wrapper's target)
    emulated: Optional[str] = None
    node_id: Optional[str] = None

    def text(self) -> str:
        """"raspberrypi (Cortex-A76, aarch64, 4 cores)", with ", emulated by qemu-aarch64" when so."""
        what = f"{self.hostname} ({self.cpu}, {self.machine}" + (f", {self.cores} cores" if self.cores else "")
        return what + (f", emulated by {self.emulated}" if self.emulated else "") + ")"


class EdgeCheck(Record):
    """The device's commands against pilotopt's on the deploy folder's reference frames."""

    frames: int
    max_abs_dv: float
    max_abs_dw: float
    tolerance: float
    ok: bool
    runtime: Optional[str] = None


class TargetLatency(Record):
    """One variant timed on a target device by `pilotopt-edge bench` there (pilotopt.targets):
    the brain step (camera frame in, command out) and the model call, with where it ran. status:
    ok, "not runnable" (the device lacks the variant's runtime, or the edge package cannot run its
    kind: `reason` says which) or failed."""

    target: str  # the target as the user named it (ssh://user@host:port, ray:RESOURCE)
    status: str
    reason: Optional[str] = None
    device: Optional[Device] = None
    runtime: Optional[str] = None
    runtime_version: Optional[str] = None
    threads: Optional[int] = None
    brain_step: Optional[LatencyStats] = None
    model_call: Optional[LatencyStats] = None
    cold_start_ms: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    check: Optional[EdgeCheck] = None
    address: Optional[str] = None  # the deploy folder's content address on the device
    sent: Optional[bool] = None  # whether this measurement had to copy the folder there
    brain_step_samples_ms: Optional[list[float]] = None  # what realtime drives at the target's speed draw

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def p50_ms(self) -> float | None:
        return self.brain_step.p50_ms if self.brain_step else None


class OfflineRow(Record):
    """One variant measured offline (evaluate.harness): identity, size, error, latency, memory."""

    name: str
    technique: Optional[str] = None
    framework: Optional[str] = None
    runtime: Optional[str] = None
    artifact: Optional[str] = None
    baseline: Optional[str] = None
    status: str
    reason: Optional[str] = None
    cached: bool = False
    steps: list[str] = []
    step_sizes: list[StepSize] = []
    precision: Optional[str] = None
    macs: Optional[int] = None
    macs_from: Optional[str] = None
    contract: Optional[dict[str, Any]] = None  # the input contract's own JSON (pilotopt.contracts)
    arch: Optional[str] = None
    arch_args: Optional[dict[str, Any]] = None
    size: Size = Size()
    error: Optional[Error] = None
    latency_ms: Optional[Latency] = None
    throughput: Optional[Throughput] = None
    memory_mb: Optional[Memory] = None
    cross_check: Optional[CrossCheck] = None
    predictor: Optional[dict[str, Any]] = None  # the runtime's own description (threads, delegate, ...)
    load_seconds: Optional[float] = None
    measure_seconds: Optional[float] = None
    background_cpu: Optional[float] = None  # CPUs other processes used while it was timed
    params_error: Optional[str] = None
    log: Optional[str] = None
    input_contract: Optional[str] = None
    outputs_out_of_range_share: Optional[float] = None
    brain_step_samples_ms: Optional[list[float]] = None  # what realtime drives draw their latency from
    on_target: Optional[TargetLatency] = None  # the same variant timed on the run's target device

    @property
    def key(self) -> str:
        return variant_key(self.framework, self.name)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def mse_mean(self) -> float | None:
        return self.error.mse_mean if self.error else None

    @property
    def p50_ms(self) -> float | None:
        """The model call's median latency (None when not measured)."""
        return self.latency_ms.model.p50_ms if self.latency_ms and self.latency_ms.model else None

    @property
    def size_bytes(self) -> int | None:
        return self.size.bytes


class WorkerReply(Record):
    """What the evaluation worker measured in its own process (evaluate.worker -> evaluate.harness);
    the harness adds the test-set error and the sizes to make an OfflineRow."""

    status: str
    reason: Optional[str] = None
    latency_ms: Optional[Latency] = None
    throughput: Optional[Throughput] = None
    memory_mb: Optional[Memory] = None
    predictor: Optional[dict[str, Any]] = None
    load_seconds: Optional[float] = None
    measure_seconds: Optional[float] = None
    background_cpu: Optional[float] = None
    params: Optional[dict[str, Any]] = None  # artifacts.count_params: params, nonzero_params, params_source
    params_error: Optional[str] = None
    input_contract: Optional[str] = None
    outputs_out_of_range_share: Optional[float] = None
    brain_step_samples_ms: Optional[list[float]] = None
    pid: Optional[int] = None


class Produced(Record):
    """What a technique measured while it produced a variant (the common fields of variant.json's
    free-form `record`; a technique's own extra fields are left in the record)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    size_bytes: Optional[int] = None
    check_max_abs_diff: Optional[float] = None
    duration_s: Optional[float] = None
    chain_duration_s: Optional[float] = None  # a chain's: the sum of its steps' duration_s
    reused: bool = False

    @classmethod
    def of(cls, record: dict | None) -> "Produced":
        return cls.from_json(record or {}, "variant.json's record")


def variant_key(framework: str | None, name: str) -> str:
    """'tf/keras': a tf and a torch variant may share a name."""
    return f"{framework or ''}/{name}"


# ----------------------------------------------------------------------------- benchmarks
class TechniqueBenchRow(Record):
    """One variant in `pilotopt bench techniques`: timed side by side with its baseline."""

    name: str
    technique: Optional[str] = None
    framework: Optional[str] = None
    runtime: Optional[str] = None
    status: str
    reason: Optional[str] = None
    steps: list[str] = []
    macs: Optional[int] = None
    macs_from: Optional[str] = None
    precision: Optional[str] = None
    size_bytes: Optional[int] = None
    artifact: Optional[str] = None
    note: Optional[str] = None
    p50_rounds_ms: list[float] = []
    mse: Optional[float] = None
    p50_ms: Optional[float] = None  # median over rounds of the batch-1 p50
    floor_ms: Optional[float] = None
    above_floor_ms: Optional[float] = None
    gmacs_per_s: Optional[float] = None
    peak_share: Optional[float] = None
    speedup: Optional[float] = None
    mse_ratio: Optional[float] = None


class SpeedClaim(Record):
    """`pilotopt bench techniques`: a variant faster than its baseline by the goal, MSE within tolerance."""

    name: str
    speedup: float
    mse_ratio: float


class SameRuntimeClaim(Record):
    """`pilotopt bench techniques`: a variant against the unchanged baseline in its own runtime."""

    name: str
    runtime: Optional[str] = None
    reference: str
    speedup_same_runtime: float
    faster: bool


class RuntimeBenchRow(Record):
    """One runtime in `pilotopt bench runtimes`: the same model at fp32, loaded, checked and timed."""

    name: str
    runtime: Optional[str] = None
    framework: Optional[str] = None
    precision: Optional[str] = None
    status: str
    reason: Optional[str] = None
    baseline: Optional[str] = None
    artifact: Optional[str] = None
    size_bytes: Optional[int] = None
    load_seconds: Optional[float] = None
    describe: Optional[dict[str, Any]] = None
    batch1_vs_batch_max_abs_diff: Optional[float] = None
    max_abs_diff: Optional[float] = None
    agrees: Optional[bool] = None
    mse_vs_labels: Optional[float] = None
    latency_b1: Optional[LatencyStats] = None
    latency_batch: Optional[LatencyStats] = None
    other_cpu_share: Optional[float] = None
    p50_ms_b1: Optional[float] = None
    throughput_fps: Optional[float] = None
    speedup_b1_vs_torch: Optional[float] = None
    speedup_batch_vs_torch: Optional[float] = None
    speedup_b1_vs_litert: Optional[float] = None
    speedup_batch_vs_litert: Optional[float] = None

    @property
    def timed(self) -> bool:
        return self.status == "ok" and self.p50_ms_b1 is not None


# ----------------------------------------------------------------------------- closed loop
class PathMetrics(Record):
    """What the car's path alone says (sim.metrics.path_metrics): a part of DriveMetrics."""

    completed_distance: float
    percentage_completed: float
    lap_completed: bool
    laps_completed: int
    lap_seconds: Optional[float] = None
    sim_seconds: float
    average_speed: float
    position_deviation_mae: float
    position_deviation_max: float


class BrainTiming(Record):
    """The brain's pace and smoothness over a drive (sim.metrics.brain_metrics): a part of DriveMetrics."""

    brain_steps: int
    mean_inference_time: Optional[float] = None  # ms
    mean_brain_step_time: Optional[float] = None  # ms (nan without steps)
    brain_iterations_frequency: Optional[float] = None
    deadline_misses: float
    suddenness: float


class DriveQuality(Record):
    """Interventions, autonomy and the driving score of a path (sim.closed_loop.drive_quality)."""

    interventions: int
    interventions_mode: bool
    autonomy: float
    driving_score: float
    bm_position_deviation: Optional[float] = None
    score_version: str


class BridgeMetrics(PathMetrics, DriveQuality):
    """A drive over ROS topics (sim.ros_bridge): the path's figures and the traffic on the topics."""

    termination: str
    off_track: bool
    frames_published: int
    commands_received: int
    commands_applied: int
    command_rate: float  # per wall second
    commands_per_frame: float
    camera_rate: float
    real_time_factor: Optional[float] = None
    wall_seconds: float
    held_back_seconds: float
    max_speed: float


class BridgeResult(Record):
    """`pilotopt sim ros-bridge`'s result: its settings, the circuit, and the metrics."""

    schema_: str = Field(BRIDGE_SCHEMA, alias="schema")
    config: dict[str, Any]
    metrics: BridgeMetrics
    circuit: dict[str, Any]

    def to_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


class DriveMetrics(Record):
    """One drive's figures (sim.closed_loop), with Behavior Metrics' names where it has them."""

    completed_distance: float
    percentage_completed: float
    lap_completed: bool
    laps_completed: int
    lap_seconds: Optional[float] = None
    sim_seconds: float
    average_speed: float
    position_deviation_mae: float
    position_deviation_max: float
    brain_steps: int
    mean_inference_time: Optional[float] = None
    mean_brain_step_time: Optional[float] = None
    brain_iterations_frequency: Optional[float] = None
    deadline_misses: float
    suddenness: float
    interventions: int
    interventions_mode: bool
    autonomy: float
    driving_score: float
    bm_position_deviation: Optional[float] = None
    score_version: str
    latency_source: str
    latency_scale: Optional[float] = None
    condition: str
    repetition: int
    mean_emulated_latency_ms: Optional[float] = None
    emulated_brain_frequency: Optional[float] = None
    wall_brain_iterations_frequency: Optional[float] = None
    real_time_factor: Optional[float] = None
    wall_seconds: float
    termination: str
    off_track: bool
    error: Optional[str] = None


class DriveJob(Record):
    """One drive to run (pipeline.drive_jobs): which variant, where, under which condition, and
    the settings that decide its result (`drive_jobs.job_key` hashes them)."""

    variant: str
    framework: Optional[str] = None
    runtime: str
    artifact: str
    artifact_sha256: Optional[str] = None
    contract: Optional[dict[str, Any]] = None
    arch: Optional[str] = None
    arch_args: dict[str, Any] = {}
    circuit: str
    direction: str
    condition: str = DEFAULT_CONDITION
    repetition: int = 0
    mode: str = "realtime"
    laps: int = 1
    timeout_s: Optional[float] = None  # sim seconds (None: the simulator's own, from the reference lap)
    latency_scale: float = 1.0  # the run's target slow-down; the condition's own multiplies it
    latency: str = "distribution"  # where a realtime drive's latency comes from
    latency_samples_ms: Optional[list[float]] = None  # the offline brain-step samples it draws from
    interventions: bool = False
    seed: int = 0
    threads: int = 1
    videos: bool = False
    plot: bool = True
    out_dir: str


class Drive(Record):
    """One drive: a variant on one circuit, direction, condition and repetition (drive_jobs)."""

    schema_: str = Field(DRIVE_SCHEMA, alias="schema")
    key: Optional[str] = None  # what decided its result (drive_jobs.job_key): a rerun reuses it
    variant: str
    framework: Optional[str] = None
    runtime: Optional[str] = None
    circuit: str
    direction: Optional[str] = None
    mode: Optional[str] = None
    condition: str = DEFAULT_CONDITION
    repetition: int = 0
    condition_latency_scale: Optional[float] = None  # the parsed condition's own slow-down
    latency_scale_applied: Optional[float] = None  # x the run's latency_scale; None: the mode ignores latency
    slowdown_only: bool = False  # latency is all the condition changes
    status: str
    reason: Optional[str] = None
    metrics: Optional[DriveMetrics] = None
    plot: Optional[str] = None
    video: Optional[str] = None
    cached: bool = False
    brain: Optional[dict[str, Any]] = None
    outputs_out_of_range_share: Optional[float] = None
    job_seconds: Optional[float] = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> dict:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)

    @property
    def clean_lap(self) -> bool:
        """A lap completed with no intervention (a lap the safety driver helped is not the model's)."""
        m = self.metrics
        return self.status == "ok" and m is not None and m.lap_completed and not m.interventions

    @property
    def score(self) -> float:
        """Its driving score; a drive that failed scores 0."""
        return self.metrics.driving_score if self.status == "ok" and self.metrics is not None else 0.0

    @property
    def cell(self) -> tuple[str, str, str]:
        """(condition, circuit, direction): one cell of the condition gate."""
        return self.condition or DEFAULT_CONDITION, self.circuit, self.direction or ""


# ----------------------------------------------------------------------------- the summary
class ConditionScore(Record):
    """A mean driving score with its 95 % bootstrap interval over the drives under one condition,
    and the clean laps there."""

    score_mean: Optional[float] = None
    score_lo: Optional[float] = None
    score_hi: Optional[float] = None
    n: int
    clean: int


class ScoreCell(ConditionScore):
    """The same in one cell of the condition gate: a condition on one circuit and direction."""

    condition: str
    circuit: str
    direction: str


class VariantSummary(Record):
    """One variant's figures: the offline row flattened, and aggregates over its drives (the
    default condition's means and intervals, every condition's and every cell's score). What the
    decision (`pilotopt.decide`), the report, the search and the CSV read."""

    key: str
    name: str
    in_offline: bool = True
    technique: Optional[str] = None
    framework: Optional[str] = None
    framework_label: Optional[str] = None
    runtime: Optional[str] = None
    baseline: Optional[str] = None
    status: Optional[str] = None
    reason: Optional[str] = None
    status_text: Optional[str] = None
    size_bytes: Optional[int] = None
    size_mb: Optional[float] = None
    gzip_bytes: Optional[int] = None
    params: Optional[int] = None
    nonzero_params: Optional[int] = None
    mse_mean: Optional[float] = None
    mse_v: Optional[float] = None
    mse_w: Optional[float] = None
    mae_v_mps: Optional[float] = None
    mae_w_radps: Optional[float] = None
    latency_p50_ms: Optional[float] = None
    latency_p90_ms: Optional[float] = None
    brain_step_p50_ms: Optional[float] = None
    throughput_fps: Optional[float] = None
    speedup_vs_baseline: Optional[float] = None
    size_ratio_vs_baseline: Optional[float] = None
    steps: list[str] = []
    step_sizes: list[StepSize] = []
    precision: Optional[str] = None
    macs: Optional[int] = None
    gmacs_per_s: Optional[float] = None
    # on the target device (evaluate --target): its status there and its brain step's p50
    target: Optional[str] = None
    target_status: Optional[str] = None
    target_reason: Optional[str] = None
    target_brain_step_p50_ms: Optional[float] = None
    target_device: Optional[str] = None  # Device.text()
    target_check_ok: Optional[bool] = None  # its commands there equal this machine's within the folder's tolerance
    target_check_max_abs: Optional[float] = None
    # closed loop, default condition
    cl_runs_total: int = 0
    cl_runs_completed: int = 0
    cl_circuits_total: int = 0
    cl_circuits_completed: int = 0
    cl_all_completed: bool = False
    cl_mean_average_speed: Optional[float] = None
    cl_mean_position_deviation_mae: Optional[float] = None
    cl_mean_brain_frequency_hz: Optional[float] = None
    cl_mean_inference_ms: Optional[float] = None
    cl_mean_real_time_factor: Optional[float] = None
    cl_mean_bm_position_deviation: Optional[float] = None
    cl_mean_interventions: Optional[float] = None
    cl_score_mean: Optional[float] = None
    cl_score_lo: Optional[float] = None
    cl_score_hi: Optional[float] = None
    cl_autonomy_mean: Optional[float] = None
    cl_autonomy_lo: Optional[float] = None
    cl_autonomy_hi: Optional[float] = None
    cl_deviation_mean: Optional[float] = None
    cl_deviation_lo: Optional[float] = None
    cl_deviation_hi: Optional[float] = None
    cl_conditions: dict[str, ConditionScore] = {}  # every condition driven, the default included
    cl_cells: dict[str, ScoreCell] = {}  # "condition|circuit|direction" -> its cell
    cl_max_slow: Optional[float] = None  # the largest tested slow-down with every lap clean, no gap below
    cl_slow_tested: Optional[float] = None
    cl_text: str = "-"

    def to_json(self) -> dict:
        return self.model_dump(mode="json")  # every field: readers of a summary need no defaults



# ----------------------------------------------------------------------------- documents
def offline_rows(offline: Any) -> list[OfflineRow]:
    """The rows of an offline results document (schema pilotopt.results/1), a bare list of rows,
    or None (no offline evaluation), checked: names unique per framework, a known status."""
    if offline is None:
        return []
    if isinstance(offline, dict):
        schema = offline.get("schema")
        if schema is not None and schema != OFFLINE_SCHEMA:
            raise BadInputError(f"offline results have schema '{schema}', expected '{OFFLINE_SCHEMA}'")
        rows = offline.get("variants")
        if rows is None:
            raise BadInputError("offline results have no 'variants' list; pass a pilotopt.results/1 document")
    elif isinstance(offline, list):
        rows = offline
    else:
        raise BadInputError(f"offline results must be a dict or a list, got {type(offline).__name__}")
    out, seen = [], set()
    for i, r in enumerate(rows):
        if isinstance(r, OfflineRow):
            row = r
        else:
            if not isinstance(r, dict) or not r.get("name"):
                raise BadInputError(f"offline row {i} has no 'name'")
            if r.get("status") not in STATUSES:
                raise BadInputError(f"offline row '{r['name']}' has status {r.get('status')!r}; "
                                    "use ok, failed or skipped")
            row = OfflineRow.from_json(r, f"offline row '{r['name']}'")
        if row.key in seen:
            raise BadInputError(f"offline variant '{row.name}' ({row.framework}) appears twice")
        seen.add(row.key)
        out.append(row)
    return out


def drives_of(closed_loop: Any) -> list[Drive]:
    """Drive records from a list of drive dicts (or Drives), checked."""
    if closed_loop is None:
        return []
    if not isinstance(closed_loop, list):
        raise BadInputError(f"closed-loop results must be a list of drives, got {type(closed_loop).__name__}")
    out = []
    for i, r in enumerate(closed_loop):
        if isinstance(r, Drive):
            out.append(r)
            continue
        if not isinstance(r, dict) or not r.get("variant") or not r.get("circuit"):
            raise BadInputError(f"closed-loop drive {i} needs 'variant' and 'circuit'")
        if r.get("status") not in STATUSES:
            raise BadInputError(f"closed-loop drive {i} ({r['variant']} on {r['circuit']}) has status "
                                f"{r.get('status')!r}; use ok, failed or skipped")
        out.append(Drive.from_json(r, f"closed-loop drive {i} ({r['variant']} on {r['circuit']})"))
    return out


class RankShift(Record):
    """A variant whose closed-loop rank differs from its offline rank (decide.verdict.predictive)."""

    name: str
    framework_label: Optional[str] = None
    mse_mean: float
    cl_score_mean: float
    offline_rank: float  # 1 = lowest MSE
    driving_rank: float  # 1 = best driving
    rank_shift: float


# ----------------------------------------------------------------------------- breaking points
class BreakingProbe(Record):
    """One latency scale tried: whether every drive of the protocol was a clean lap there."""

    scale: float
    clean: bool
    clean_drives: Optional[int] = None
    drives: Optional[int] = None
    score_mean: Optional[float] = None
    source: Optional[str] = None  # "run": one of the run's own drives, not probed again


class BreakingPointRecord(Record):
    """How much slower hardware a variant the decision rests on drives on before it stops driving
    cleanly (pipeline.breaking; the search itself is breaking_point.find_breaking_point)."""

    key: str
    name: str
    framework: Optional[str] = None
    role: str  # recommended, runner-up or baseline
    scale: Optional[float] = None  # the largest clean scale (None: not even the first)
    failed_at: Optional[float] = None  # the smallest failing scale (None: clean up to the cap)
    capped: bool = False
    resolution: float
    cap: float
    probes: list[BreakingProbe] = []
    text: str
    latency_scale: float = 1.0  # the run's own scale, which every scale here includes


# ----------------------------------------------------------------------------- search
SEARCH_TRIAL_SCHEMA = "pilotopt.search.trial/2"  # 2: the summary as the report's, with the search's own fields


class SearchTrial(Record):
    """One `pilotopt search` trial (or one baseline it is compared against): the variant's summary,
    the same figures the report decides on, plus what only the search has."""

    schema_: str = Field(SEARCH_TRIAL_SCHEMA, alias="schema")
    name: str
    candidate: dict[str, Any] = {}  # baseline, steps, settings, chain (search.space.Candidate)
    state: str = "failed"  # complete or failed
    reason: Optional[str] = None
    screen: Optional[str] = None  # why it was not driven further (None: driven with the whole protocol)
    fidelity: int = 0  # 1 screened offline, 2 one drive, 3 every repetition under every condition
    summary: Optional[VariantSummary] = None
    score: float = 0.0  # the mean over conditions of the mean driving score; 0 when not driven
    mse_ratio: Optional[float] = None  # its MSE / its baseline's on the same frames
    mmacs: Optional[float] = None  # MMACs per prediction (its baseline's dense count without a structure step)
    host: Optional[str] = None  # where its latency was measured
    seconds: Optional[float] = None
    variant: Optional[str] = None  # its folder
    cached: bool = False

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def chain(self) -> str:
        return str(self.candidate.get("chain") or self.name)


class LayerSensitivity(Record):
    """One row of the per-layer sensitivity table (search.sensitivity): an int8 trial with one
    layer kept in float, against the all-int8 trial."""

    layer: str
    name: str
    state: str
    reason: Optional[str] = None
    score: Optional[float] = None
    score_change: Optional[float] = None  # against the all-int8 trial
    score_default_mean: Optional[float] = None
    mse_ratio: Optional[float] = None
    latency_p50_ms: Optional[float] = None
    size_mb: Optional[float] = None
    fidelity: Optional[int] = None
