"""Running the trials: Optuna samples (multi-objective TPE or NSGA-II) with its study in SQLite, so a
killed search resumes; the local engine runs one trial after the other in this process (each
step in child processes, as everywhere), the Ray engine runs them in parallel through Ray Tune
(`OptunaSearch` over the same SQLite study, `ConcurrencyLimiter` in batches), on a local instance
or a cluster.

Either way, a trial's result is first written to its own file (search.trial), and the study is
reconciled with those files before and after a run: a trial that was running when the search was
killed is failed in the study and its parameters enqueued again, so the next run draws the same
candidate and reads its result back if it had finished."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from pilotopt.errors import BadInputError
from pilotopt.isolation import child_env_vars
from pilotopt.search.context import SearchContext
from pilotopt.search.space import Replay, suggest
from pilotopt.records import SearchTrial
from pilotopt.search.trial import cached_trial, read_reference, run_trial, sampler_values

STUDY_NAME = "pilotopt-search"
INTERRUPTED = "interrupted"  # user attribute of a trial failed because its run was killed
FAILED = "failed"  # user attribute (the reason) of a trial told to the sampler as the dominated point
Say = Callable[[str], None]


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage(ctx: SearchContext):
    optuna = _optuna()
    ctx.out.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{ctx.out / 'optuna.db'}")


def sampler(ctx: SearchContext):
    optuna = _optuna()
    s = ctx.search
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=s.population, seed=s.seed)
    return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.startup_trials, multivariate=True,
                                      group=True)


def open_study(ctx: SearchContext, store=None):
    optuna = _optuna()
    store = store or storage(ctx)
    study = optuna.create_study(study_name=STUDY_NAME, storage=store, sampler=sampler(ctx),
                                directions=ctx.search.directions, load_if_exists=True)
    have = [d.name.lower() for d in study.directions]
    if have != ctx.search.directions:
        raise BadInputError(f"'{ctx.out / 'optuna.db'}' holds a search with objectives directed {have}, not "
                            f"{ctx.search.directions}; use another --out or delete that folder")
    return study


def reconcile(ctx: SearchContext, study) -> int:
    """Settle trials the study still calls running: from the trial's result file when it finished,
    else failed as interrupted with its parameters enqueued again. Returns how many were settled."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    store = study._storage
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name = t.user_attrs.get("name")
        doc = cached_trial(ctx, name) if name else None
        if doc is not None:
            values, own = sampler_values(ctx, doc)
            if not own:
                store.set_trial_user_attr(t._trial_id, FAILED, doc.reason or "failed")
            store.set_trial_state_values(t._trial_id, TrialState.COMPLETE, values)
        else:
            store.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
            store.set_trial_state_values(t._trial_id, TrialState.FAIL)
            if t.params:
                study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number})
        n += 1
    return n


def finished(study) -> int:
    """Trials that count against the budget: complete, or failed by themselves (not interrupted)."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED)))


def _kinds(ctx: SearchContext) -> dict[str, str]:
    return {name: b.kind for name, b in ctx.baselines.items()}


class DefineByRun:
    """OptunaSearch's define-by-run space (a class, not a closure: Tune pickles its searcher)."""

    def __init__(self, ctx: SearchContext):
        self.ctx = ctx

    def __call__(self, trial) -> None:
        _draw(self.ctx, trial)
        return None


def _draw(ctx: SearchContext, trial):
    cand = suggest(trial, ctx.search_space, _kinds(ctx))
    if cand is not None:
        trial.set_user_attr("name", cand.name)
        trial.set_user_attr("chain", cand.chain)
    return cand


def _line(doc: SearchTrial, number: int | None) -> str:
    n = "" if number is None else number
    if not doc.complete or doc.summary is None:
        return f"trial {n} {doc.chain}: failed: {doc.reason}"
    how = f" (not driven: {doc.screen})" if doc.screen else ""
    m = doc.summary
    return (f"trial {n} {doc.chain}: score {doc.score:.1f}, p50 {m.latency_p50_ms:.3f} ms, "
            f"{m.size_mb or 0:.3f} MB{how}" + (" (cached)" if doc.cached else ""))


# -- local ----------------------------------------------------------------------------------------
def run_local(ctx: SearchContext, ref: dict, say: Say) -> None:
    optuna = _optuna()
    study = open_study(ctx)
    settled = reconcile(ctx, study)
    if settled:
        say(f"search: settled {settled} trial(s) a killed run left running")
    while finished(study) < ctx.search.trials:
        trial = study.ask()
        cand = _draw(ctx, trial)
        if cand is None:
            trial.set_user_attr("reason", "no chain in the space fits the choices drawn")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        doc = run_trial(ctx, cand, ref, say=lambda m: None)
        values, own = sampler_values(ctx, doc)
        if not own:
            trial.set_user_attr(FAILED, doc.reason or "failed")
        study.tell(trial, values)
        say(f"[{finished(study)}/{ctx.search.trials}] " + _line(doc, trial.number))


# -- Ray Tune ---------------------------------------------------------------------------------------
def _tune_trial(config: dict, ctx_doc: dict, ref_file: str) -> dict:
    """One Ray Tune trial: the parameters OptunaSearch drew -> the candidate -> its result."""
    ctx = SearchContext.from_dict(ctx_doc)
    ref = read_reference(Path(ref_file))
    cand = suggest(Replay(_flat(config)), ctx.search_space, _kinds(ctx))
    doc = run_trial(ctx, cand, ref)
    values, own = sampler_values(ctx, doc)
    out = {"name": cand.name, "state": doc.state, FAILED: None if own else (doc.reason or "failed")}
    out.update(dict(zip(ctx.search.objectives, values)))
    return out


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def _ray_temp_dir(ctx: SearchContext) -> str:
    """Ray's session folder inside the search folder, unless that path is too long for the Unix
    sockets Ray puts under it (then a short one under the system temp folder)."""
    path = ctx.out / "ray_tmp"
    if len(str(path)) <= 40:
        path.mkdir(parents=True, exist_ok=True)
        return str(path)
    return tempfile.mkdtemp(prefix="pilotopt-ray-")


def run_ray(ctx: SearchContext, ref_file: Path, say: Say) -> None:
    try:
        import ray
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise BadInputError("the ray executor needs Ray Tune: pip install 'pilotopt[search]'") from None

    for name in ("ray", "ray.tune", "ray.tune.search.optuna.optuna_search", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    store = storage(ctx)
    study = open_study(ctx, store)
    settled = reconcile(ctx, study)
    if settled:
        say(f"search: settled {settled} trial(s) a killed run left running")
    remaining = ctx.search.trials - finished(study)
    if remaining <= 0:
        return
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": ctx.search.address} if ctx.search.address else {
            "address": "local", "include_dashboard": False, "num_cpus": ctx.search.workers,
            "_temp_dir": _ray_temp_dir(ctx)}
        try:
            ray.init(log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": child_env_vars(paths=not ctx.search.address)}, **kwargs)
        except ConnectionError as exc:
            raise BadInputError(f"cannot connect to Ray at {ctx.search.address}: {exc}; start one with "
                                "`ray start --head` or leave search.address out") from None
    try:
        searcher = OptunaSearch(space=DefineByRun(ctx), metric=list(ctx.search.objectives),
                                mode=["max" if d == "maximize" else "min" for d in ctx.search.directions],
                                sampler=sampler(ctx), study_name=STUDY_NAME, storage=store)
        trainable = tune.with_resources(tune.with_parameters(_tune_trial, ctx_doc=ctx.to_dict(),
                                                             ref_file=str(ref_file)), {"cpu": 1})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=ctx.search.workers,
                                                                      batch=True),
                                        num_samples=remaining, max_concurrent_trials=ctx.search.workers),
            run_config=tune.RunConfig(name="tune", storage_path=str(ctx.out / "ray_results"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0)))
        results = tuner.fit()
        for r in results:
            if r.metrics:
                doc = cached_trial(ctx, r.metrics.get("name", ""))
                if doc is not None:
                    say(_line(doc, None))
    finally:
        if started:
            ray.shutdown()
    reconcile(ctx, open_study(ctx, store))
