"""Find the source data files and cache their conversion to ``.h5ad``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sngep import _logging as logg

if TYPE_CHECKING:
    from anndata import AnnData

#: Bump when a converter changes what it writes, so stale caches are not reused.
CACHE_VERSION = 1

_ENV_DATA = "SNGEP_DATA_DIR"
_ENV_CACHE = "SNGEP_CACHE_DIR"


def _shared_data_dirs() -> list[Path]:
    """Candidate data roots: ``$SNGEP_DATA_DIR``, then ``shared/data`` above cwd and this file."""
    roots: list[Path] = []
    env = os.environ.get(_ENV_DATA)
    if env:
        roots.append(Path(env).expanduser())
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for parent in (start, *start.parents):
            cand = parent / "shared" / "data"
            if cand.is_dir() and cand not in roots:
                roots.append(cand)
    return roots


def find_source(filename: str, subdir: str, path: str | os.PathLike | None) -> Path | None:
    """Locate ``filename``: in ``path`` (or ``path/subdir``) if given, else in the data roots.

    Returns ``None`` when nothing is found and ``path`` is None; raises
    :class:`FileNotFoundError` when an explicit ``path`` does not hold the file.
    """
    if path is not None:
        folder = Path(path).expanduser()
        for cand in (folder / filename, folder / subdir / filename):
            if cand.is_file():
                return cand
        msg = (
            f"{filename} not found in path={str(folder)!r} (nor in its {subdir!r} subfolder); "
            f"pass path= the folder that holds {filename}"
        )
        raise FileNotFoundError(msg)
    for root in _shared_data_dirs():
        for cand in (root / subdir / filename, root / filename):
            if cand.is_file():
                return cand
    return None


def not_found_error(filename: str, subdir: str) -> FileNotFoundError:
    """The error raised when no ``path=`` was given and the search found nothing."""
    searched = ", ".join(str(p) for p in _shared_data_dirs()) or "none found"
    msg = (
        f"{filename} not found: pass path= the folder that holds it, or set ${_ENV_DATA} to a "
        f"data folder with a {subdir!r} subfolder (searched data folders: {searched})"
    )
    return FileNotFoundError(msg)


def cache_dir() -> Path:
    """``$SNGEP_CACHE_DIR``, else ``~/.cache/sngep``."""
    env = os.environ.get(_ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sngep"


def cache_path(source: Path, tag: str = "") -> Path:
    """Cache file for ``source``, keyed by its name, size and the converter version."""
    size = source.stat().st_size
    suffix = f"-{tag}" if tag else ""
    return cache_dir() / f"{source.stem}{suffix}-{size}-v{CACHE_VERSION}.h5ad"


def load_cached(source: Path, convert: Callable[[Path], AnnData], tag: str = "") -> AnnData:
    """Read the cached conversion of ``source``, converting (and caching) it the first time."""
    import anndata as ad

    target = cache_path(source, tag)
    if target.is_file():
        logg.debug(f"reading cached {target}")
        return ad.read_h5ad(target)
    start = logg.info(f"converting {source} (once; cached as {target})")
    adata = convert(source)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary name, then rename: a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(suffix=".h5ad.tmp", dir=target.parent)
        os.close(fd)
        adata.write_h5ad(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, target)
    except OSError as err:
        logg.warning(f"could not cache {source.name} in {target.parent} ({err}); set ${_ENV_CACHE}")
        if tmp is not None and Path(tmp).exists():
            Path(tmp).unlink()
        return adata
    logg.info("    finished", time=start)
    # Read back, so the first call returns exactly what every later call will.
    return ad.read_h5ad(target)
