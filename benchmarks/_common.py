"""Shared helpers: data preparation, fresh-process runs, wall time and peak RSS."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(os.environ.get("SNGEP_BENCH_RESULTS", Path(__file__).parent / "results"))
SCRATCH = Path(os.environ.get("SNGEP_BENCH_DIR", Path(tempfile.gettempdir()) / "sngep_bench"))


def rss_mb() -> float:
    """Current resident set size of this process (MiB), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_mb(field: str) -> float:
    """``field`` (e.g. ``VmHWM``, ``VmRSS``) of /proc/self/status in MiB; NaN if absent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB), ``VmHWM`` from /proc/self/status.

    Not ``ru_maxrss``: Linux carries it across fork + exec, so a freshly spawned child
    reported its parent's peak (a 16 MB child showed 815 MB). ``VmHWM`` belongs to the
    process's own address space; ``ru_maxrss`` is the fallback where /proc lacks it.
    """
    hwm = vm_mb("VmHWM")
    return hwm if hwm == hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, dict[str, float]]:
    """Call ``fn`` and return ``(result, stats)``: wall time and RSS before / peak after.

    ``peak_rss_mb`` is the process peak; it includes everything loaded before the call.
    ``step_peak_mb`` is ``peak - rss_before`` when the call raised the process peak, the
    memory the step itself needed on top of its inputs; when loading the inputs had a
    higher peak than the step, the step's peak is hidden and this is marked as an upper bound.
    """
    before, peak0 = rss_mb(), peak_rss_mb()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    wall = time.perf_counter() - t0
    peak = peak_rss_mb()
    stats = {
        "wall_s": wall,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "step_peak_mb": peak - before,
        "step_peak_is_upper_bound": bool(peak <= peak0),
    }
    return out, stats


def set_thread_env(threads: int) -> None:
    """Set every thread-count variable (torch via ``BENCH_THREADS``, BLAS, OpenMP, numba)
    to ``threads``; processes spawned afterwards inherit them before their imports."""
    for var in (
        "BENCH_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    ):
        os.environ[var] = str(threads)


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` command-line overrides of DARLC settings: values read as JSON (numbers,
    booleans, lists), ``None`` as None, anything else as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key:
            msg = f"a setting must read key=value, got {item!r}"
            raise ValueError(msg)
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = None if val == "None" else val
    return out


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run module-level ``fn(*args)`` in a new spawned interpreter (clean peak RSS)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def prepared_dlpfc(sample: str = "151673"):
    """DLPFC sample, genes in >= 10 spots, log1p.

    151673's expression is count-normalised already (log1p only); 151674's file holds raw
    counts, which get ``normalize_total`` first (``uns['bench_raw_counts']`` says which).
    """
    import scanpy as sc

    import sngep

    adata = sngep.datasets.dlpfc(sample)
    n_loaded = adata.n_vars
    raw = "raw counts" in str(adata.uns.get("dataset", {}).get("expression", ""))
    sc.pp.filter_genes(adata, min_cells=10)
    if raw:
        sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    adata.uns["bench_n_genes_loaded"] = n_loaded
    adata.uns["bench_raw_counts"] = raw
    return adata


def darlc_main_rows(methods: dict[str, Any]) -> list[str]:
    """Names of the DARLC main rows of a result JSON (not ablations, not the paper preset),
    the current default preset's (``darlc_default``) first."""
    names = [m for m in methods if re.fullmatch(r"darlc_\w+", m) and m != "darlc_paper"]
    return sorted(names, key=lambda m: m != "darlc_default")


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    text = json.dumps(payload, indent=2, default=_jsonable)
    # integer lists (labels, cluster sizes) and string lists (genes) on one line each:
    # readable, diff-friendly files
    text = _INT_LIST.sub(lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    text = _STR_LIST.sub(lambda m: "[" + re.sub(r'",\s+"', '", "', m.group(1)) + "]", text)
    path.write_text(text + "\n")
    return path


_INT_LIST = re.compile(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]")
_STR = r'"(?:[^"\\\n]|\\.)*"'
_STR_LIST = re.compile(rf"\[\s*({_STR}(?:,\s*{_STR})*)\s*\]")


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def machine() -> dict[str, Any]:
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": "shared machine: other processes ran on the same cores; absolute times are noisy",
    }


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """A small markdown table."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def zscore_rows(x: Any) -> Any:
    """Each row centred and scaled to unit sd (float64); constant rows become zeros.

    With rows z-scored, Euclidean distance ranks pairs like 1 - Pearson, which is what the
    k-means / Leiden baselines on gene images and smoothed expression should see.
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=1, keepdims=True)
    sd = xc.std(axis=1, keepdims=True)
    return xc / np.where(sd > 0, sd, 1.0)
