"""Command line: ``sngep demo`` and ``sngep run INPUT.h5ad --output OUT.h5ad``.

Progress goes to stderr; on bad input the command prints one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _pipeline(adata, *, n_clusters, stages, n_genes, figures, random_state, normalise):
    import scanpy as sc

    import sngep

    if normalise:
        sc.pp.filter_genes(adata, min_cells=10)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
    if n_genes is not None and n_genes < adata.n_vars:
        sngep.pp.spatial_genes(adata, n_top=n_genes, subset=True)
    if "gene_images" not in adata.varm:
        sngep.pp.gene_images(adata)
    sngep.tl.seed_similarity(adata)
    sngep.tl.estimate_k(adata)
    sngep.tl.darlc(adata, n_clusters=n_clusters, random_state=random_state, **stages)
    if figures is not None:
        import matplotlib

        matplotlib.use("Agg")
        figures.mkdir(parents=True, exist_ok=True)
        written = []
        for name, fn in (
            ("gene_clusters", lambda: sngep.pl.gene_clusters(adata, return_fig=True)),
            ("cluster_patterns", lambda: sngep.pl.cluster_patterns(adata, return_fig=True)),
            ("eigengap", lambda: sngep.pl.eigengap(adata, return_fig=True)),
            ("training_history", lambda: sngep.pl.training_history(adata, return_fig=True)),
        ):
            path = figures / f"{name}.png"
            fn().savefig(path, dpi=110)
            written.append(path)
        return written
    return []


def _stages(args) -> dict:
    """``tl.darlc`` keywords from the command line (``None``: the preset's value)."""
    return {
        "preset": args.preset,
        "gat_epochs": args.gat_epochs,
        "pretrain_steps": args.pretrain_steps,
        "epochs": args.epochs,
    }


def _write(adata, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(output)


def _demo(args) -> int:
    import sngep

    out = Path(args.output)
    adata = sngep.datasets.mouse_olfactory_bulb()
    print(
        f"sngep demo: mouse olfactory bulb, {adata.n_obs} spots x {adata.n_vars} genes",
        file=sys.stderr,
    )
    figs = _pipeline(
        adata,
        n_clusters=args.n_clusters,
        stages=_stages(args),
        n_genes=args.n_genes,
        figures=out,
        random_state=args.random_state,
        normalise=True,
    )
    _write(adata, out / "demo.h5ad")
    k = adata.uns["darlc"]["n_clusters"]
    print(
        f"K={k} (estimate_k: {adata.uns['estimate_k']['k']}); wrote {out / 'demo.h5ad'}",
        file=sys.stderr,
    )
    for f in figs:
        print(f"wrote {f}", file=sys.stderr)
    return 0


def _run(args) -> int:
    import anndata as ad

    src = Path(args.input)
    if not src.is_file():
        msg = f"input file not found: {src}"
        raise FileNotFoundError(msg)
    try:
        adata = ad.read_h5ad(src)
    except Exception as err:  # h5py/anndata raise OSError, KeyError, ... on a foreign file
        msg = f"{src} is not a readable .h5ad file ({_message(err)})"
        raise ValueError(msg) from err
    _pipeline(
        adata,
        n_clusters=args.n_clusters,
        stages=_stages(args),
        n_genes=args.n_genes,
        figures=None if args.figures is None else Path(args.figures),
        random_state=args.random_state,
        normalise=args.normalise,
    )
    _write(adata, Path(args.output))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sngep", description="DARLC gene-image embeddings and clusters"
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(q):
        from sngep.models.darlc.config import PRESETS

        q.add_argument(
            "--n-clusters", type=int, default=None, help="K (default: sngep.tl.estimate_k)"
        )
        q.add_argument(
            "--preset",
            default="default",
            choices=sorted(PRESETS),
            help="'default' (CPU), 'fast' (a short schedule), 'paper' (the paper's, for a GPU)",
        )
        q.add_argument(
            "--gat-epochs", type=int, default=None, help="GAT denoiser epochs (default: preset)"
        )
        q.add_argument(
            "--pretrain-steps",
            type=int,
            default=None,
            help="Module I pretraining optimiser steps (default: preset)",
        )
        q.add_argument(
            "--epochs", type=int, default=None, help="at most this many joint epochs (default: preset)"
        )
        q.add_argument("--random-state", type=int, default=0)

    d = sub.add_parser("demo", help="run the whole pipeline on the bundled mouse olfactory bulb")
    d.add_argument("--output", default="sngep_demo", help="folder for demo.h5ad and PNGs")
    d.add_argument("--n-genes", type=int, default=300, help="top Moran's I genes to use")
    common(d)
    r = sub.add_parser("run", help="run the pipeline on an h5ad with spatial coordinates")
    r.add_argument("input")
    r.add_argument("--output", required=True)
    r.add_argument("--figures", default=None, help="folder for PNG figures")
    r.add_argument("--n-genes", type=int, default=None, help="keep the top Moran's I genes")
    r.add_argument(
        "--normalise",
        action="store_true",
        help="filter genes (>= 10 spots), normalize_total and log1p first (for raw counts)",
    )
    common(r)
    return p


def _message(err: BaseException) -> str:
    """The text of an exception; a KeyError's ``str`` adds quotes around it, ``args[0]`` not."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sngep`` console script."""
    args = _parser().parse_args(argv)
    import scanpy as sc

    # progress lines (sngep logs through scanpy) on stderr; restored for in-process callers
    verbosity, logfile = sc.settings.verbosity, sc.settings.logfile
    sc.settings.verbosity, sc.settings.logfile = "info", sys.stderr
    try:
        return _demo(args) if args.command == "demo" else _run(args)
    except (FileNotFoundError, KeyError, ValueError, OSError) as err:
        print(f"sngep: error: {_message(err)}", file=sys.stderr)
        return 1
    finally:
        sc.settings.verbosity, sc.settings.logfile = verbosity, logfile


if __name__ == "__main__":
    sys.exit(main())
