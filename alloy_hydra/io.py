"""Reading raw data-card CSVs: every format mistake becomes a DataError naming file, row and column."""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError
from .schema import ROW_COL

_DELIMS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _decode(path: Path, raw: bytes) -> str:
    # Excel writes UTF-8 with a BOM ("CSV UTF-8") or UTF-16 ("Unicode text"); both are read transparently.
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(enc)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"is not UTF-8 text (byte {raw[err.start]:#x}); save it as 'CSV UTF-8'", file=path, row=line
        ) from None


def _check_header(header: list[str], delimiter: str, path: Path) -> None:
    """A one-column header from the wrong delimiter, a duplicated name, or the reserved row column: refused."""
    if len(header) == 1:
        others = [d for d in _DELIMS if d != delimiter and len(header[0].split(d)) > 1]
        if others:
            raise DataError(
                f"the header has one column; the file looks {_DELIMS[others[0]]}-separated, not "
                f"{_DELIMS.get(delimiter, repr(delimiter))}-separated: set data.delimiter="
                f"{json.dumps(others[0])}",
                file=path,
                row=1,
            )
    dupes = [h for h, n in Counter(header).items() if n > 1 and h != ""]
    if dupes:
        where = [i + 1 for i, h in enumerate(header) if h == dupes[0]]
        raise DataError(
            f"duplicate header: column name appears at positions {where}", file=path, row=1, column=dupes[0]
        )
    if ROW_COL in header:
        raise DataError(
            f"column name {ROW_COL!r} is reserved: the tool numbers the file's rows in it (a run's "
            "view.csv or rejects.csv is output, not raw cards); rename or drop that column",
            file=path,
            row=1,
            column=ROW_COL,
        )


def _records(reader, width: int, path: Path) -> tuple[list[list[str]], list[int]]:
    """The data rows, stripped, with the file line each starts on; blank lines skipped, ragged rows refused."""
    records, rows = [], []
    start = reader.line_num + 1
    try:
        for rec in reader:
            if not any(cell.strip() for cell in rec):
                start = reader.line_num + 1
                continue  # blank line
            if len(rec) != width:
                raise DataError(f"has {len(rec)} fields, the header has {width}", file=path, row=start)
            records.append([c.strip() for c in rec])
            rows.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"malformed CSV: {err}", file=path, row=start) from None
    if not records:
        raise DataError("has a header but no data rows", file=path)
    return records, rows


def read_cards(path, delimiter: str = ",", required: list[str] = ()) -> pd.DataFrame:
    """Read a data-card CSV as strings (cleaning parses values); adds `source_row`."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("file is empty", file=path)
    text = _decode(path, raw)
    if "\x00" in text:
        raise DataError("looks binary (an .xlsx saved with a .csv name?); export it as CSV", file=path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("file is empty", file=path) from None
    header = [h.strip() for h in header]
    _check_header(header, delimiter, path)
    header = [h if h else f"Unnamed: {i}" for i, h in enumerate(header)]
    records, rows = _records(reader, len(header), path)
    df = pd.DataFrame(records, columns=header, dtype=object)
    df.insert(0, ROW_COL, np.asarray(rows, dtype=int))
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = difflib.get_close_matches(missing[0], header, n=1)
        raise DataError(
            "required column missing" + (f"; did you mean {hint[0]!r}?" if hint else f"; the file has {header}"),
            file=path,
            row=1,
            column=missing[0],
        )
    return df


def finite(obj):
    """JSON has no inf/nan: non-finite floats become null (the report says why where it matters)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def write_json(path, obj) -> None:
    Path(path).write_text(json.dumps(finite(obj), indent=2, default=_jsonable) + "\n")


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")


def job_dirs(sweep_dir, marker: str = ".hydra/config.yaml") -> list[Path]:
    """Run dirs under a sweep dir holding `marker`, at any depth: a list override (data.interactions=[..., 'a/b'])
    puts a '/' into the job's dir name, which nests it."""
    depth = marker.count("/") + 1
    found = (q for q in Path(sweep_dir).glob(f"**/{marker}") if ".hydra" not in q.parts[:-depth])
    return sorted({Path(*q.parts[:-depth]) for q in found})


def read_run(run: Path) -> tuple[dict, dict, dict]:
    """A run dir's config (unresolved, as a dict), metrics.json and status.json ({} where absent)."""
    from omegaconf import OmegaConf

    path = run / ".hydra" / "config.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.exists() else {}
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    status = json.loads((run / "status.json").read_text()) if (run / "status.json").exists() else {}
    return cfg, metrics, interrupted(status)


def interrupted(status: dict) -> dict:
    """A "running" status whose process is gone from this host (killed, crashed, machine restarted) as
    "interrupted"; a run on another host, or one still alive, stays as written."""
    import os
    import socket

    if status.get("status") != "running" or "pid" not in status or status.get("host") != socket.gethostname():
        return status
    try:
        os.kill(int(status["pid"]), 0)
    except ProcessLookupError:
        return {**status, "status": "interrupted", "error": f"process {status['pid']} ended without finishing"}
    except PermissionError:  # alive, another user's
        pass
    return status
