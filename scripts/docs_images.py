"""Copy the report's decision figure and robustness heatmap of a finished run into docs/img/.

    python scripts/docs_images.py [--run out/demo] [--dest docs/img]     (make docs-images)

`pilotopt run --out RUN` writes them as RUN/report/figures/decision.png and heatmap.png
(pilotopt.report.build_report); the README and the documentation site show them as
docs/img/decision.png and docs/img/robustness.png. They are copied, never drawn by hand, so the
pictures are always those of a real run. Run it after `make demo`, and commit docs/img/."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# docs/img name -> the run's report figure it is copied from
IMAGES = {"decision.png": "decision.png", "robustness.png": "heatmap.png"}


def copy_images(run: Path, dest: Path) -> list[Path]:
    """Copy each figure of `run`'s report into `dest` (atomically, each file whole); return the copies."""
    figures = run / "report" / "figures"
    missing = [str(figures / src) for src in IMAGES.values() if not (figures / src).is_file()]
    if missing:
        raise SystemExit(f"error: {', '.join(missing)} not found: finish a run first "
                         f"(`make demo` writes out/demo) or pass --run DIR of a finished `pilotopt run`")
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in IMAGES.items():
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(figures / src, tmp)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep it from readers of the checkout
            os.replace(tmp, dest / name)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(dest / name)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=ROOT / "out" / "demo",
                    help="a finished `pilotopt run` folder (default out/demo, what `make demo` writes)")
    ap.add_argument("--dest", type=Path, default=ROOT / "docs" / "img", help="where the images go (default docs/img)")
    args = ap.parse_args(argv)
    try:
        written = copy_images(args.run, args.dest)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
