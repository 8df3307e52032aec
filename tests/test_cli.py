import subprocess
import sys

import anndata as ad
import numpy as np

import sngep
from sngep.__main__ import main


def test_run_on_small_h5ad_writes_keys(tmp_path):
    a = sngep.datasets.synthetic(
        5, patterns=("band", "blob"), n_variants=1, shape=(12, 12), random_state=0
    )
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    figs = tmp_path / "figs"
    args = ["run", str(src), "--output", str(out), "--normalise", "--n-clusters", "2"]
    stages = ["--preset", "fast", "--gat-epochs", "3", "--pretrain-steps", "4", "--epochs", "1"]
    rc = main([*args, *stages, "--figures", str(figs)])
    assert rc == 0
    b = ad.read_h5ad(out)
    params = b.uns["darlc"]["params"]
    assert (params["gat_epochs"], params["pretrain_steps"], params["epochs"]) == (3, 4, 1)
    assert b.uns["darlc"]["training"]["n_pretrain_steps"] == 4
    assert b.varm["X_darlc"].shape[1] == 64  # the [CLS] width (head="standardise")
    assert {"gene_images", "darlc_soft"} <= set(b.varm)
    assert "seed_similarity" in b.varp and "estimate_k" in b.uns
    assert b.uns["darlc"]["n_clusters"] == 2
    assert np.isfinite(b.varm["X_darlc"]).all()
    assert {p.name for p in figs.iterdir()} == {
        "gene_clusters.png",
        "cluster_patterns.png",
        "eigengap.png",
        "training_history.png",
    }


def test_missing_file_exits_nonzero_with_one_line(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sngep",
            "run",
            str(tmp_path / "nope.h5ad"),
            "--output",
            str(tmp_path / "o.h5ad"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("sngep: error: input file not found")


def test_non_h5ad_input_names_the_file(tmp_path, capsys):
    src = tmp_path / "counts.csv"
    src.write_text("gene,spot1\nA,1\n")
    rc = main(["run", str(src), "--output", str(tmp_path / "o.h5ad")])
    assert rc == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"sngep: error: {src} is not a readable .h5ad file")


def test_key_errors_print_without_quotes(tmp_path, capsys):
    a = ad.AnnData(X=np.ones((5, 3), dtype=np.float32))  # no spatial coordinates
    src = tmp_path / "flat.h5ad"
    a.write_h5ad(src)
    rc = main(["run", str(src), "--output", str(tmp_path / "o.h5ad")])
    assert rc == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sngep: error: no spatial coordinates"), last
