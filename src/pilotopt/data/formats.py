"""The two recording layouts on disk, read into one shape (frame paths in order + physical labels):

- DeepLearningStudio: a folder with `data.csv` (image_name, v, w, ...) next to its frames. Without
  an image_name column (`v,w[,timestamp]`) the rows pair, in file order, with the folder's frames
  sorted by integer name (0.png, 1.png, ..., 10.png), as DeepLearningStudio reads them;
- older: a folder with `Images/*.png` and `data.json` (a JSON list or objects back to back), or
  DeepLearningStudio's TensorFlow split `Train/Images + Train/train.json`, `Test/Images +
  Test/test.json` (a labels file named after its folder). Those files are not JSON (bare words such
  as `"class3": moderate`), so objects that do not decode are read field by field instead. Objects
  without image_name pair with the frames in integer-name order, like the CSV rows above.

Circuits come from pilotopt's metadata, else from the folder name; a `Train`/`Test` folder has no
circuit in its name, so it is circuit `train`/`test` exactly: hold the test split out with
`--test-circuits test`. `pilotopt sim dataset` keeps a recording's metadata beside it, in
`<root>/.pilotopt/<recording>.meta.json` (see pilotopt.sim.recording); datasets written before that
have it inside the folder as `meta.json`, which is still read (and wins when both exist, since it
travels with its folder).

Reading touches labels and file stats only; pixels are decoded once, by the cache."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilotopt.data.validate import FrameError, Problems, parse_label
from pilotopt.errors import BadInputError
from pilotopt.sim.recording import LEGACY_META, recording_meta_path

# The documented built-in circuits; unioned with the live registry so a folder name is read the
# same way whether or not a circuit's module is installed yet.
KNOWN_CIRCUITS = ("simple", "extended_simple", "many_curves", "monaco", "nurburgring", "montmelo", "montreal")
DIRECTION_WORDS = {"clockwise": "clockwise", "cw": "clockwise", "anticlockwise": "anticlockwise",
                   "counterclockwise": "anticlockwise", "ccw": "anticlockwise"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TRAILING = re.compile(r"[_\-](\d+|" + "|".join(DIRECTION_WORDS) + r")$")
LAYOUT_DLS, LAYOUT_LEGACY = "data.csv", "Images+data.json"


@dataclass
class Recording:
    """One drive: its frames in order, their (v, w) in physical units, and the stats of every
    input file (the cache key)."""

    path: Path
    layout: str
    circuit: str
    direction: str | None
    frames: list[Path]
    vw: np.ndarray  # (n, 2) float64: v m/s, w rad/s
    files: list[tuple[str, int, int]]  # (path, size, mtime_ns)

    def __len__(self) -> int:
        return len(self.frames)


def natural_key(name: str) -> list:
    """'2.png' < '10.png': frames sort by their integer stem, not as text."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def known_circuits() -> list[str]:
    try:
        # scipy: imported on first use, not with this module
        from pilotopt.sim.circuits import circuit_names

        live = circuit_names()
    except Exception:  # noqa: BLE001 - a half-written circuit module must not block reading data
        live = []
    return sorted(set(KNOWN_CIRCUITS) | {c.lower() for c in live})


def circuit_from_name(folder_name: str, known: list[str] | None = None) -> str:
    """Longest built-in circuit name that prefixes the folder name ('extended_simple_cw' is
    extended_simple, not simple); otherwise the name without trailing `_<digits>`/direction words."""
    low = folder_name.strip().lower()
    known = known_circuits() if known is None else known
    matches = [c for c in known if low == c or low.startswith(c + "_") or low.startswith(c + "-")]
    if matches:
        return max(matches, key=len)
    stripped = low
    while True:
        shorter = _TRAILING.sub("", stripped)
        if shorter == stripped or not shorter:
            return stripped
        stripped = shorter


def direction_from_name(folder_name: str) -> str | None:
    for token in reversed(re.split(r"[_\-]", folder_name.lower())):
        if token in DIRECTION_WORDS:
            return DIRECTION_WORDS[token]
    return None


def find_recordings(roots: list[Path], problems: Problems) -> list[Recording]:
    """Every recording under every root (recursively), or a one-line error per bad root."""
    known = known_circuits()
    recordings: list[Recording] = []
    seen: set[str] = set()
    for root in roots:
        if not root.exists():
            raise BadInputError(f"dataset folder '{root}' does not exist; check the path or generate data "
                                f"with `pilotopt sim dataset --out {root}`")
        if not root.is_dir():
            raise BadInputError(f"dataset root '{root}' is not a folder; pass the folder that holds the recordings")
        skipped_before = problems.recordings + problems.frames
        found = 0
        for folder, layout in _walk(root, problems):
            key = os.path.realpath(folder)
            if key in seen:
                continue
            seen.add(key)
            reader = read_dls if layout == LAYOUT_DLS else read_legacy
            rec = reader(folder, problems, known)
            if rec is not None:
                recordings.append(rec)
                found += 1
        if not found:
            skipped = problems.recordings + problems.frames - skipped_before
            detail = f" ({skipped} bad recordings/frames skipped: {dict(problems.reasons)})" if skipped else ""
            raise BadInputError(
                f"no usable recordings found under '{root}'{detail}; expected folders with data.csv and "
                f"640 x 480 frames, or Images/ with data.json; generate data with "
                f"`pilotopt sim dataset --out {root}` or check the path")
    return recordings


def _walk(root: Path, problems: Problems):
    """Yield (folder, layout) for each recording; a recording's subfolders are not searched."""
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:  # symlink loop
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # .tmp folders being written
        here = Path(dirpath)
        if "data.csv" in filenames:
            dirnames[:] = []
            yield here, LAYOUT_DLS
        elif "Images" in dirnames:
            dirnames[:] = []
            if legacy_labels_path(here, filenames) is not None:
                yield here, LAYOUT_LEGACY
            else:
                problems.recording("missing labels", f"{here}: has Images/ but no data.json or "
                                   f"{here.name.lower()}.json (and no data.csv); add the labels file or move "
                                   "the folder out of the dataset root")
        else:
            pngs = [f for f in filenames if f.lower().endswith(IMAGE_SUFFIXES)]
            if pngs:
                files = f"{len(pngs)} image file{'s' if len(pngs) != 1 else ''}"
                problems.recording("missing labels", f"{here}: {files} but no data.csv; add "
                                   "data.csv with columns image_name,v,w or move the folder out of the dataset root")


def legacy_labels_path(folder: Path, filenames: list[str] | None = None) -> Path | None:
    """The labels file next to Images/: data.json, else one named after the folder (any case), which
    is how DeepLearningStudio's TensorFlow split names them (Train/train.json, Test/test.json)."""
    names = {f.lower(): f for f in (os.listdir(folder) if filenames is None else filenames)}
    for wanted in ("data.json", f"{folder.name.lower()}.json"):
        if wanted in names and _stat_file(folder / names[wanted]) is not None:
            return folder / names[wanted]
    return None


def _stat_file(path: Path) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _resolve(folder: Path, name: str) -> tuple[Path, os.stat_result] | None:
    """`12.png` or `12` (extension omitted) inside `folder`."""
    candidates = [name] if name.lower().endswith(IMAGE_SUFFIXES) else [name + ".png", name]
    for cand in candidates:
        path = folder / cand
        st = _stat_file(path)
        if st is not None:
            return path, st
    return None


def _file_entry(path: Path, st: os.stat_result) -> tuple[str, int, int]:
    return str(path), int(st.st_size), int(st.st_mtime_ns)


def _frames_in_order(images_dir: Path, labels_path: Path, n_labels: int,
                     problems: Problems) -> list[tuple[Path, os.stat_result]] | None:
    """The frames that labels without image names pair with: every image in `images_dir` sorted by
    its integer name (2.png before 10.png). A name that is not an integer or a count that differs
    from the labels would pair labels with the wrong frames, so either drops the recording."""
    images = [(p, st) for p in images_dir.iterdir()
              if p.name.lower().endswith(IMAGE_SUFFIXES) and (st := _stat_file(p)) is not None]
    odd = sorted((p.name for p, _ in images if not p.stem.isdigit()), key=natural_key)
    if odd:
        problems.recording("frame name not an integer", f"{images_dir}: frame {odd[0]!r} is not named by an integer "
                           f"({len(odd)} such); {labels_path.name} has no image names, so its labels pair with "
                           "frames 0.png, 1.png, ... in numeric order; rename the frames or add image names")
        return None
    if len(images) != n_labels:
        problems.recording("count mismatch", f"{images_dir}: {n_labels} labels in {labels_path.name} but "
                           f"{len(images)} frames; labels without image names pair with frames in order, so the "
                           "counts must match (delete the extra frames or rows, or add image names)")
        return None
    return sorted(images, key=lambda e: (int(e[0].stem), e[0].name))


def _read_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.recording("unreadable labels", f"{path}: cannot read it ({exc}); restore or re-export the file")
        return None


def _circuit(folder: Path, problems: Problems, known: list[str], files: list) -> tuple[str, str | None] | None:
    """(circuit, direction) from the recording's metadata when present (an old dataset's meta.json in
    the folder, else `.pilotopt/<name>.meta.json` beside it), else from the folder name."""
    meta_path = folder / LEGACY_META
    st = _stat_file(meta_path)
    if st is None:
        meta_path = recording_meta_path(folder)
        st = _stat_file(meta_path)
    meta: dict = {}
    if st is not None:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problems.recording("bad meta.json", f"{meta_path}: not readable JSON ({exc}); fix it or delete it "
                               "(the circuit is then taken from the folder name)")
            return None
        files.append(_file_entry(meta_path, st))
        meta = meta if isinstance(meta, dict) else {}
    circuit = meta.get("circuit")
    if isinstance(circuit, str) and circuit.strip():
        circuit = circuit.strip()
        circuit = Path(circuit).stem.lower() if circuit.lower().endswith(".csv") else circuit.lower()
    else:
        circuit = circuit_from_name(folder.name, known)
    direction = meta.get("direction") if isinstance(meta.get("direction"), str) else direction_from_name(folder.name)
    return circuit, direction


def _finish(folder, layout, entries, files, problems, known, empty_msg, bad_frames) -> Recording | None:
    """Sort the labelled frames by name and attach the circuit; None when nothing usable is left."""
    if not entries:
        if bad_frames:
            problems.recording("no usable frames", f"{folder}: all {bad_frames} labelled frames are bad")
        else:
            problems.recording("no rows", empty_msg)
        return None
    got = _circuit(folder, problems, known, files)
    if got is None:
        return None
    entries.sort(key=lambda e: natural_key(e[0].name))
    frames = [e[0] for e in entries]
    vw = np.array([(e[1], e[2]) for e in entries], dtype=np.float64)
    files.extend(_file_entry(e[0], e[3]) for e in entries)
    return Recording(folder, layout, got[0], got[1], frames, vw, files)


def read_dls(folder: Path, problems: Problems, known: list[str] | None = None) -> Recording | None:
    """DeepLearningStudio layout: each data.csv row labels the frame it names (any row order), or,
    without an image_name column, the frame at its position in integer-name order."""
    known = known_circuits() if known is None else known
    csv_path = folder / "data.csv"
    frames_before = problems.frames
    text = _read_text(csv_path, problems)
    if text is None:
        return None
    files = [_file_entry(csv_path, os.stat(csv_path))]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    cols = [h.strip().lower() for h in header] if header else []
    missing = [c for c in ("v", "w") if c not in cols]
    if missing:
        found = ", ".join(cols) if cols else "none, the file is empty"
        problems.recording("missing column", f"{csv_path}: no {' or '.join(repr(m) for m in missing)} column "
                           f"(found: {found}); data.csv needs the columns image_name,v,w (or v,w with frames "
                           "named 0.png, 1.png, ... in row order)")
        return None
    if "image_name" not in cols:
        return _read_dls_in_order(folder, csv_path, reader, cols, files, problems, known)
    i_name, i_v, i_w = cols.index("image_name"), cols.index("v"), cols.index("w")
    entries: list = []
    labelled: dict[Path, int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_path} line {reader.line_num}"
        if len(row) < len(cols):
            problems.frame("bad row", f"{where}: {len(row)} fields but the header has {len(cols)}; fix that row")
            continue
        name = row[i_name].strip()
        try:
            v = parse_label(row[i_v], "v", where)
            w = parse_label(row[i_w], "w", where)
        except FrameError as exc:
            problems.frame(exc.reason, str(exc))
            continue
        found = (_resolve(folder, name) or _resolve(folder / "Images", name)) if name else None
        if found is None:
            problems.frame("missing image", f"{where} names image {name!r} but {folder / name} does not exist; "
                           "restore the frame or delete that row")
            continue
        path, st = found
        if path in labelled:
            problems.frame("duplicate label", f"{where}: {path.name} is already labelled on line "
                           f"{labelled[path]}; keep one row per frame")
            continue
        labelled[path] = reader.line_num
        entries.append((path, v, w, st))
    return _finish(folder, LAYOUT_DLS, entries, files, problems, known,
                   f"{csv_path} has no label rows; record frames into the folder or delete it",
                   problems.frames - frames_before)


def _read_dls_in_order(folder, csv_path, reader, cols, files, problems, known) -> Recording | None:
    """data.csv without image_name: row k (blank lines aside) labels the k-th frame of the folder in
    integer-name order. A bad row still takes its frame's place, so later rows stay paired."""
    frames_before = problems.frames
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        problems.recording("no rows", f"{csv_path} has no label rows; record frames into the folder or delete it")
        return None
    frames = _frames_in_order(folder, csv_path, len(rows), problems)
    if frames is None:
        return None
    i_v, i_w = cols.index("v"), cols.index("w")
    entries: list = []
    for (line, row), (path, st) in zip(rows, frames):
        where = f"{csv_path} line {line} (frame {path.name})"
        if len(row) < len(cols):
            problems.frame("bad row", f"{where}: {len(row)} fields but the header has {len(cols)}; fix that row")
            continue
        try:
            entries.append((path, parse_label(row[i_v], "v", where), parse_label(row[i_w], "w", where), st))
        except FrameError as exc:
            problems.frame(exc.reason, str(exc))
    return _finish(folder, LAYOUT_DLS, entries, files, problems, known,
                   f"{csv_path} has no label rows; record frames into the folder or delete it",
                   problems.frames - frames_before)


def parse_json_objects(text: str) -> list:
    """A JSON list, or JSON values written back to back (`{...}{...}`, optionally with commas or
    newlines between them), flattened into one list."""
    decoder = json.JSONDecoder()
    out: list = []
    i, n = 0, len(text)
    while True:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            return out
        value, i = decoder.raw_decode(text, i)
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)


_LOOSE_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*("(?:[^"\\]|\\.)*"|[^,{}\[\]"]*)')


def parse_loose_objects(text: str) -> list[dict]:
    """`{...}` objects back to back whose values need not be JSON (DeepLearningStudio's train.json:
    `{"class3": moderate, "w": -0.22, "v": 9}{...}`): each becomes a dict of its `"key": value`
    fields as text, quotes removed, so v and w are read however the rest is written. ValueError on
    an unclosed object or text between objects (a truncated or foreign file)."""
    out: list[dict] = []
    i, n = 0, len(text)
    while True:
        while i < n and (text[i].isspace() or text[i] in ",[]"):
            i += 1
        if i >= n:
            return out
        if text[i] != "{":
            raise ValueError(f"expected '{{' at char {i}, found {text[i:i + 20]!r}")
        end = _object_end(text, i)
        fields = {}
        for key, raw in _LOOSE_FIELD.findall(text[i + 1:end]):
            fields[key] = _unquote(raw.strip())
        out.append(fields)
        i = end + 1


def _object_end(text: str, start: int) -> int:
    """Index of the `}` closing the object opened at `start` (braces inside strings do not count)."""
    depth, in_string, escaped = 0, False, False
    for j in range(start, len(text)):
        ch = text[j]
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = ch == "\\", ch != '"'
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"the object at char {start} is never closed (truncated file?)")


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            return json.loads(raw)
        except ValueError:
            return raw[1:-1]
    return raw


def _label_objects(json_path: Path, text: str, problems: Problems) -> list | None:
    """The objects of a labels file: JSON when it is JSON, else read field by field (bare words)."""
    try:
        return parse_json_objects(text)
    except ValueError as exc:
        try:
            return parse_loose_objects(text)
        except ValueError as loose:
            problems.recording("bad data.json", f"{json_path}: not valid JSON ({exc}) nor {{...}} objects back to "
                               f"back ({loose}); fix or re-export it")
            return None


def read_legacy(folder: Path, problems: Problems, known: list[str] | None = None) -> Recording | None:
    """Older layout: Images/ + data.json (or Train/train.json, Test/test.json); objects without
    image names pair in order with the frames sorted by integer stem."""
    known = known_circuits() if known is None else known
    json_path, images_dir = legacy_labels_path(folder) or folder / "data.json", folder / "Images"
    frames_before = problems.frames
    text = _read_text(json_path, problems)
    if text is None:
        return None
    files = [_file_entry(json_path, os.stat(json_path))]
    objects = _label_objects(json_path, text, problems)
    if objects is None:
        return None
    named = [isinstance(o, dict) and "image_name" in o for o in objects]
    if objects and any(named) and not all(named):
        problems.recording("bad data.json", f"{json_path}: some objects have an image_name and some do not; "
                           "give every object an image_name or none")
        return None
    if objects and not any(named):
        images = _frames_in_order(images_dir, json_path, len(objects), problems)
        if images is None:
            return None
        paths = [p.name for p, _ in images]
    else:
        paths = [str(o["image_name"]).strip() for o in objects]
    entries: list = []
    labelled: dict[Path, int] = {}
    for k, (obj, name) in enumerate(zip(objects, paths), start=1):
        where = f"{json_path} object #{k}"
        if not isinstance(obj, dict):
            problems.frame("bad label", f"{where}: expected an object with v and w, got {type(obj).__name__}; "
                           "fix that entry")
            continue
        try:
            v = parse_label(obj.get("v"), "v", where)
            w = parse_label(obj.get("w"), "w", where)
        except FrameError as exc:
            problems.frame(exc.reason, str(exc))
            continue
        found = _resolve(images_dir, name) if name else None
        if found is None:
            problems.frame("missing image", f"{where} names image {name!r} but {images_dir / name} does not "
                           "exist; restore the frame or delete that entry")
            continue
        path, st = found
        if path in labelled:
            problems.frame("duplicate label", f"{where}: {path.name} is already labelled by object "
                           f"#{labelled[path]}; keep one entry per frame")
            continue
        labelled[path] = k
        entries.append((path, v, w, st))
    return _finish(folder, LAYOUT_LEGACY, entries, files, problems, known,
                   f"{json_path} has no labels; record frames into the folder or delete it",
                   problems.frames - frames_before)
