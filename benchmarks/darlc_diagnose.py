"""Where does DARLC's representation lose the gene patterns? (issue 5 follow-up)

DARLC 'fast' trails k-means on standardised images in the peer benchmark. This script trains
DARLC once per case and clusters every intermediate representation with the same k-means
(n_init=10), so a drop from one stage to the next shows where information is lost:

* ``images std``: the per-gene standardised images DARLC is trained on (the input);
* ``views std``: the GAT-denoised positive views (the contrastive targets);
* ``cls``: the ViT [CLS] token (``embed_dim``), trained only through the contrastive loss;
* ``patch mean``: the mean of the ViT patch tokens (what the MAE loss trains);
* ``e``: the contrastive projection (eq. 9), the input of the head;
* ``z``: the head's output (eq. 12), ``varm['X_darlc']``;
* ``smm``: DARLC's own labels (the Student's t mixture on z).

Each row is scored against the planted patterns (synthetic: ARI / NMI) and on the raw images
(DBIP). Pretraining-only models (``epochs=0``) are measured too, to separate Module I from the
joint stage.

    python -m benchmarks.darlc_diagnose            # synthetic seeds 0 1 + MOB top 500
    python -m benchmarks.darlc_diagnose --quick    # synthetic seed 0, 5 + 5 epochs
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import machine, table, write_json, zscore_rows


def _kmeans(x: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=0).fit_predict(np.asarray(x, dtype=np.float64))


def _encode(enc, x):
    """``ViTEncoder.forward`` without masking, keeping the patch tokens: ``(cls, tokens)``."""
    import torch

    patches = enc.patchify(x)
    tokens = enc.patch_embed(patches.to(enc.patch_embed.weight.dtype)) + enc.pos_embed
    h = torch.cat([enc.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
    for block in enc.blocks:
        h = block(h)
    h = enc.norm(h)
    return h[:, 0], h[:, 1:]


def features(model, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every intermediate representation of a fitted :class:`sngep.models.DARLC`."""
    import torch

    from sngep.models.darlc.train import normalise_images

    net = model.net
    x = torch.as_tensor(normalise_images(images, model.mask), device=model.device)
    out: dict[str, list] = {"cls": [], "patch mean": [], "e": [], "z": []}
    was = net.training
    net.eval()
    with torch.no_grad():
        for i in range(0, x.shape[0], 64):
            xb = x[i : i + 64]
            cls, tokens = _encode(net.module_i.encoder, xb)
            e = net.module_i.head(cls)
            out["cls"].append(cls)
            out["patch mean"].append(tokens.mean(dim=1))
            out["e"].append(e)
            out["z"].append(net.head(e if net.head_input == "e" else cls, net.covariates(xb)))
    net.train(was)
    return {k: torch.cat(v).cpu().numpy() for k, v in out.items()}


def diagnose(adata, k: int, case: str, truth: str | None, darlc_kw: dict) -> list[dict]:
    import sngep
    from sngep._validate import get_gene_images
    from sngep.models import DARLC

    images, mask = get_gene_images(adata, "gene_images")
    rows = []
    for stage, kw in (("pretrain only", {"epochs": 0}), ("full", {})):
        t = time.perf_counter()
        model = DARLC(k, preset="fast", device="cpu", random_state=0, **{**darlc_kw, **kw})
        model.fit(
            images,
            mask=mask,
            similarity=adata.varp["seed_similarity"],
            show_progress_bar=False,
        )
        wall = time.perf_counter() - t
        reps = {
            "images std": zscore_rows(images[:, mask]),
            "views std": zscore_rows(model.views_[:, mask]),
            **features(model, images),
        }
        labels = {name: _kmeans(r, k) for name, r in reps.items()}
        labels["smm"] = model.labels_
        for name, lab in labels.items():
            row = {
                "case": case,
                "stage": stage,
                "representation": name,
                "clusterer": "darlc smm" if name == "smm" else "k-means",
                "dim": int(reps[name].shape[1]) if name in reps else None,
                "DBIP": sngep.metrics.dbi_pearson(images, lab, mask=mask),
                "min_size": int(np.bincount(lab).min()),
                "fit_s": wall,
            }
            if truth is not None:
                row["ARI"] = sngep.metrics.ari(adata.var[truth], lab)
                row["NMI"] = sngep.metrics.nmi(adata.var[truth], lab)
            rows.append(row)
            print(row, flush=True)
    return rows


def main(quick: bool = False) -> dict:
    import scanpy as sc

    import sngep

    darlc_kw = dict(pretrain_epochs=5, epochs=5, gat_epochs=50) if quick else {}
    out = {"quick": quick, "darlc_overrides": darlc_kw, "rows": [], "machine": machine()}
    name = "darlc_diagnose_quick.json" if quick else "darlc_diagnose.json"
    for seed in (0,) if quick else (0, 1):
        adata = sngep.datasets.synthetic(random_state=seed)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sngep.pp.gene_images(adata)
        sngep.tl.seed_similarity(adata, show_progress_bar=False)
        k = int(adata.var["pattern"].nunique())
        out["rows"] += diagnose(adata, k, f"synthetic s={seed}", "pattern", darlc_kw)
        write_json(name, out)
    if not quick:
        adata = sngep.datasets.mouse_olfactory_bulb()
        sc.pp.filter_genes(adata, min_cells=10)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sngep.pp.spatial_genes(adata, n_top=500, subset=True)
        sngep.pp.gene_images(adata)
        sngep.tl.seed_similarity(adata, show_progress_bar=False)
        k = round(adata.n_vars / 30)
        out["rows"] += diagnose(adata, k, f"MOB top500 K={k}", None, darlc_kw)
    path = write_json(name, out)
    cols = ["case", "stage", "representation", "dim", "ARI", "NMI", "DBIP", "min_size"]
    print(table(out["rows"], cols))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    main(args.quick)
