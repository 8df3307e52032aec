"""DARLC cost on DLPFC 151673 (issue 3): time per epoch, peak memory, achieved FLOP/s.

Everything runs on CPU, each measurement in a fresh spawned process (clean ``ru_maxrss``).

1. GAT denoiser: :func:`sngep.models.darlc.gat.denoise_gat` on all genes (features) and
   all spots, preset widths; time per epoch = ``(T(3 epochs) - T(1 epoch)) / 2``.
2. ``sngep.tl.darlc(preset=..., pretrain_epochs=1, epochs=1, gat_epochs=1, device='cpu')``
   with the seeding similarity, on all genes or on a random subset of N genes. The trainer's
   functions are wrapped with timers (in this process only) to split the run into GAT views,
   one pretraining epoch, and one joint epoch (which holds the first SMM EM fit, 3 k-means++
   starts x ``em_iter_first`` iterations, and the final EM refit).
3. Extrapolation to the preset's full schedule (an EXTRAPOLATION, not a measurement):
   ``gat_epochs * t_gat + n_all / N * (pretrain_epochs * t_pre + epochs * t_joint)``,
   linear in the number of genes; using the first joint epoch for every joint epoch is an
   upper bound (later epochs run a shorter EM) unless training stops early (tol) anyway.
4. Achieved fp32 FLOP/s of one pretraining step of presets 'default' and 'paper' (the
   trainer's own step: forward, backward, optimiser and EMA update; :func:`step_flops`) on a
   batch of the preset's size and DLPFC's image shape, FLOPs counted with
   ``torch.utils.flop_counter.FlopCounterMode`` (attention counted through the math SDPA
   backend), against a 2048 x 2048 fp32 ``torch.matmul`` in the same process.
5. Two routes to a faster step, default preset (:func:`step_routes`): CPU bfloat16
   autocast and ``torch.compile`` of the transformer blocks, each against the fp32 step.

    python -m benchmarks.darlc_epoch            # fast on all genes, paper on 1,000 genes
    python -m benchmarks.darlc_epoch --quick    # 300 genes for both presets
    python -m benchmarks.darlc_epoch --quick --parts routes   # re-use the rest

Input: the seed-similarity AnnData written by ``benchmarks.foundation`` to
``$SNGEP_BENCH_DIR`` (recomputed if absent). Output: ``benchmarks/results/darlc_epoch*.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from benchmarks._common import (
    RESULTS,
    SCRATCH,
    in_fresh_process,
    machine,
    measure,
    peak_rss_mb,
    prepared_dlpfc,
    table,
    write_json,
)

SIM_FILE = "dlpfc_sim.h5ad"


def _load_with_similarity():
    import anndata as ad

    import sngep

    path = SCRATCH / SIM_FILE
    if path.exists():
        return ad.read_h5ad(path)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    adata = prepared_dlpfc("151673")
    sngep.pp.gene_images(adata)
    sngep.tl.seed_similarity(adata, show_progress_bar=False)
    adata.write_h5ad(path)
    return adata


def step_gat(preset: str) -> dict:
    """Per-epoch time and peak memory of the GAT denoiser on all genes."""
    from sngep._validate import get_gene_images
    from sngep.models.darlc.config import DARLCConfig
    from sngep.models.darlc.gat import denoise_gat, spot_graph
    from sngep.models.darlc.train import normalise_images

    adata = _load_with_similarity()
    images, mask = get_gene_images(adata, "gene_images")
    cfg = DARLCConfig.from_preset(preset)
    x = normalise_images(images, mask)[:, mask].T.copy()  # (n_spots, n_genes), as make_views
    del adata, images
    edge_index = spot_graph(np.argwhere(mask).astype(float), method="radius", radius=cfg.gat_radius)
    kw = dict(hidden=cfg.gat_hidden, latent=cfg.gat_latent, device="cpu", show_progress_bar=False)
    _, s1 = measure(denoise_gat, x, edge_index, epochs=1, **kw)
    _, s3 = measure(denoise_gat, x, edge_index, epochs=3, **kw)
    return {
        "preset": preset,
        "n_genes": x.shape[1],
        "n_spots": x.shape[0],
        "hidden": cfg.gat_hidden,
        "t_1_epoch_s": s1["wall_s"],
        "t_3_epochs_s": s3["wall_s"],
        "t_epoch_s": (s3["wall_s"] - s1["wall_s"]) / 2,
        "peak_rss_mb": s3["peak_rss_mb"],
        "rss_before_mb": s1["rss_before_mb"],
        "full_gat_epochs": cfg.gat_epochs,
    }


def step_darlc(preset: str, n_genes: int | None, seed: int = 0) -> dict:
    """One pretraining + one joint epoch of tl.darlc, split into phases by wrapped timers."""
    import sngep
    import sngep.models.darlc.model as model_mod
    import sngep.models.darlc.train as train_mod

    adata = _load_with_similarity()
    n_all = adata.n_vars
    if n_genes is not None and n_genes < n_all:
        keep = np.sort(np.random.default_rng(seed).choice(n_all, n_genes, replace=False))
        adata = adata[:, keep].copy()
    marks: dict[str, float] = {}
    totals = {"views_s": 0.0, "em_s": 0.0, "epoch_loss_step_s": 0.0}

    def timed(fn, total_key=None, first_key=None, end_key=None):
        def wrapper(*a, **k):
            t = time.perf_counter()
            if first_key and first_key not in marks:
                marks[first_key] = t
            out = fn(*a, **k)
            if total_key:
                totals[total_key] += time.perf_counter() - t
            if end_key:
                marks[end_key] = time.perf_counter()
            return out

        return wrapper

    model_mod.make_views = timed(model_mod.make_views, "views_s")
    model_mod.fit = timed(model_mod.fit, first_key="fit_start", end_key="fit_end")
    train_mod.embed_all = timed(train_mod.embed_all, first_key="joint_start")
    train_mod.refit_smm = timed(train_mod.refit_smm, "em_s")
    train_mod._epoch_loss_step = timed(train_mod._epoch_loss_step, "epoch_loss_step_s")

    try:
        _, stats = measure(
            sngep.tl.darlc,
            adata,
            preset=preset,
            pretrain_epochs=1,
            epochs=1,
            gat_epochs=1,
            device="cpu",
            show_progress_bar=False,
        )
    except Exception as err:  # report the failure instead of losing the other measurements
        return {
            "preset": preset,
            "n_genes": adata.n_vars,
            "n_genes_all": n_all,
            "error": f"{type(err).__name__}: {err}",
            "marks": marks,
            "totals": totals,
            "peak_rss_mb": peak_rss_mb(),
        }
    return {
        "preset": preset,
        "n_genes": adata.n_vars,
        "n_genes_all": n_all,
        "k": int(adata.uns["darlc"]["n_clusters"]),
        "image_shape": tuple(int(s) for s in adata.uns["gene_images"]["shape"]),
        "t_total_s": stats["wall_s"],
        "t_views_gat1_s": totals["views_s"],
        "t_pretrain_epoch_s": marks["joint_start"] - marks["fit_start"],
        "t_joint_epoch_s": marks["fit_end"] - marks["joint_start"],
        "t_joint_em_s": totals["em_s"],
        "t_joint_epoch_loss_step_s": totals["epoch_loss_step_s"],
        "peak_rss_mb": stats["peak_rss_mb"],
        "rss_before_mb": stats["rss_before_mb"],
        "step_peak_mb": stats["step_peak_mb"],
        "step_peak_is_upper_bound": stats["step_peak_is_upper_bound"],
    }


def _pretrain_step(preset: str, image_shape: tuple[int, int], autocast: bool = False):
    """The trainer's own pretraining step (Algorithm 1 lines 4-8 as ``train.pretrain`` runs
    them) on random images of ``image_shape``: ``(train_step, net, cfg, optimiser)``. With
    ``autocast`` the forward pass runs under CPU bfloat16 autocast (weights and optimiser
    stay fp32)."""
    import torch

    from sngep.models.darlc import train
    from sngep.models.darlc._device import adam
    from sngep.models.darlc.config import DARLCConfig

    cfg = DARLCConfig.from_preset(preset)
    torch.manual_seed(0)
    net = train.DARLCNet(image_shape, cfg, n_clusters=17)
    n = max(4 * cfg.batch_size, 64)
    x = torch.randn(n, *image_shape)
    data = train._Data(
        x=x,
        v=x.roll(1, dims=1),
        s_norm=None,
        pixel_weight=None,
        cfg=cfg,
        gen=torch.Generator().manual_seed(0),
        seed=0,
    )
    train._set_smoothed(net, data)  # the encoder's second channel, once, as the trainer does
    opt = adam([*net.module_i.trainable_parameters(), *net.uwl_ssl.parameters()], lr=cfg.lr)
    batch = torch.arange(cfg.batch_size)

    def train_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            rec, clr, _ = train._ssl_loss(net, batch, data)
            loss = net.uwl_ssl(rec, clr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        net.module_i.momentum_update(cfg.momentum)

    return train_step, net, cfg, opt


def _times_s(fn, repeats: int, warmup: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _median_s(fn, repeats: int, warmup: int = 2) -> float:
    return statistics.median(_times_s(fn, repeats, warmup))


def step_routes(preset: str, image_shape: tuple[int, int], repeats: int = 10) -> dict:
    """Two standard routes to a faster CPU step, timed against the fp32 step in one process:
    bfloat16 autocast (the CPU's AMX / AVX-512 bf16 units) and ``torch.compile`` of every
    transformer block (fused element-wise work); and the bf16 matmul rate beside fp32's."""
    import torch

    from sngep.models.darlc.vit import TransformerBlock

    fp32, net, _, _ = _pretrain_step(preset, image_shape)
    out = {"preset": preset, "step_fp32_s": _median_s(fp32, repeats)}
    bf16, *_ = _pretrain_step(preset, image_shape, autocast=True)
    out["step_bf16_autocast_s"] = _median_s(bf16, repeats)
    t = time.perf_counter()
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, TransformerBlock):
                setattr(module, name, torch.compile(child, dynamic=True))
    fp32()
    out["compile_s"] = time.perf_counter() - t
    out["step_compiled_blocks_s"] = _median_s(fp32, repeats)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        gflops = 2 * 2048**3 / _median_s(lambda: torch.matmul(x, y), 5, 1) / 1e9  # noqa: B023
        out[f"matmul_{str(dtype).split('.')[1]}_gflops"] = gflops
    for key in ("bf16_autocast", "compiled_blocks"):
        out[f"speedup_{key}"] = out["step_fp32_s"] / out[f"step_{key}_s"]
    out["torch_threads"] = torch.get_num_threads()
    return out


def step_flops(preset: str, image_shape: tuple[int, int], repeats: int = 5) -> dict:
    """Achieved GFLOP/s of one pretraining step vs a 2048^2 fp32 matmul (same process).

    The step is the trainer's own (Algorithm 1 lines 4-8 as ``train.pretrain`` runs them):
    ``UWL(L_rec, L_clr)`` on a batch of the preset's size, backward, the optimiser step and
    the EMA update, on random images of DLPFC's shape with the preset's resolved patch size.
    FLOPs are those of the forward and backward passes (``FlopCounterMode``, attention
    counted through the math SDPA backend); the optimiser's element-wise work is timed but
    not counted, so the ratio is a lower bound.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    train_step, net, cfg, opt = _pretrain_step(preset, image_shape)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        train_step()
    flops = counter.get_total_flops()
    by_op = {str(op).split(".")[1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    step_times = _times_s(train_step, repeats, warmup=1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    mm_s = _median_s(lambda: torch.matmul(a, b), 5, warmup=1)
    step_s = statistics.median(step_times)
    vit = flops / step_s / 1e9
    mm = 2 * 2048**3 / mm_s / 1e9
    return {
        **_op_breakdown(train_step, by_op, repeats, mm),
        "preset": preset,
        "batch_size": cfg.batch_size,
        "image_shape": image_shape,
        "patch_size": net.module_i.encoder.patch_size,
        "n_tokens": net.module_i.encoder.n_patches,
        "optimizer": "fused Adam" if opt.defaults.get("fused") else "foreach Adam",
        "flops_per_step": flops,
        "step_s_median": step_s,
        "step_s_all": step_times,
        "vit_gflops": vit,
        "matmul_s_median": mm_s,
        "matmul_gflops": mm,
        "ratio_vit_over_matmul": vit / mm,
        "torch_threads": torch.get_num_threads(),
    }


def _op_breakdown(train_step, flops_by_op: dict, repeats: int, matmul_gflops: float) -> dict:
    """Where a step's time goes (``torch.profiler``, self CPU time by aten op, ``repeats``
    steps) and the achieved rate of its two FLOP-counted parts: the linear layers (``mm``,
    ``addmm``) and attention (the ``bmm`` FLOPs of the math backend against the time of the
    fused kernel that runs instead)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            train_step()
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    linear_us = self_us.get("aten::mm", 0) + self_us.get("aten::addmm", 0)
    attn_us = sum(t for k, t in self_us.items() if "scaled_dot_product" in k)
    linear_flops = flops_by_op.get("mm", 0) + flops_by_op.get("addmm", 0)

    def rate(n_flops: float, us: float) -> float | None:
        return n_flops * repeats / (us * 1e-6) / 1e9 if us > 0 else None

    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:10]
    linear_rate, attn_rate = rate(linear_flops, linear_us), rate(flops_by_op.get("bmm", 0), attn_us)
    return {
        "flops_by_op": flops_by_op,
        "time_share_top_ops": {k: t / total for k, t in top},
        "time_share_linear": linear_us / total,
        "time_share_attention": attn_us / total,
        "linear_gflops": linear_rate,
        "attention_gflops": attn_rate,
        "ratio_linear_over_matmul": None if linear_rate is None else linear_rate / matmul_gflops,
        "ratio_attention_over_matmul": None if attn_rate is None else attn_rate / matmul_gflops,
    }


def extrapolate(run: dict, gat: dict, preset: str) -> dict:
    from sngep.models.darlc.config import DARLCConfig

    cfg = DARLCConfig.from_preset(preset)
    scale = run["n_genes_all"] / run["n_genes"]
    pre = cfg.pretrain_epochs * run["t_pretrain_epoch_s"] * scale
    joint = cfg.epochs * run["t_joint_epoch_s"] * scale
    gat_s = cfg.gat_epochs * gat["t_epoch_s"]
    return {
        "preset": preset,
        "gene_scale": scale,
        "gat_s": gat_s,
        "pretrain_s": pre,
        "joint_s": joint,
        "total_s": gat_s + pre + joint,
        "total_h": (gat_s + pre + joint) / 3600,
        "schedule": f"{cfg.gat_epochs} GAT + {cfg.pretrain_epochs} pre + {cfg.epochs} joint",
    }


def main(
    quick: bool = False,
    n_fast: int | None = None,
    n_paper: int | None = 1000,
    parts: tuple[str, ...] = ("flops", "gat", "darlc", "routes"),
) -> dict:
    if quick:
        n_fast = n_paper = 300
    SCRATCH.mkdir(parents=True, exist_ok=True)
    if not (SCRATCH / SIM_FILE).exists():
        in_fresh_process(_load_with_similarity)
    import anndata as ad

    backed = ad.read_h5ad(SCRATCH / SIM_FILE, backed="r")
    shape = tuple(int(s) for s in backed.uns["gene_images"]["shape"])
    name = "darlc_epoch_quick.json" if quick else "darlc_epoch.json"
    previous = RESULTS / name
    old = json.loads(previous.read_text()) if previous.exists() else {}
    out: dict = {
        "dataset": "DLPFC 151673 (filter_genes min_cells=10, log1p)",
        "quick": quick,
        "device": "cpu",
        "image_shape": shape,
        "flops": {},
        "gat": {},
        "darlc": {},
        "routes": {},
        "extrapolated": {},
        "machine": machine(),
    }
    presets = {"flops": ("default", "paper"), "routes": ("default",)}  # others: fast, paper
    for part, step, args in (
        ("flops", step_flops, lambda p: (p, shape)),
        ("gat", step_gat, lambda p: (p,)),
        ("darlc", step_darlc, lambda p: (p, n_fast if p == "fast" else n_paper)),
        ("routes", step_routes, lambda p: (p, shape)),
    ):
        for preset in presets.get(part, ("fast", "paper")):
            if part in parts or preset not in old.get(part, {}):
                out[part][preset] = in_fresh_process(step, *args(preset))
            else:  # re-use the previous measurement of this part
                out[part][preset] = old[part][preset]
            print(part, out[part][preset], flush=True)
    for preset, run in out["darlc"].items():
        if "error" not in run:
            out["extrapolated"][preset] = extrapolate(run, out["gat"][preset], preset)
    path = write_json(name, out)

    print("\nViT training step, fp32 CPU (FLOPs by FlopCounterMode; matmul in the same process)")
    print(
        table(
            list(out["flops"].values()),
            [
                "preset",
                "batch_size",
                "flops_per_step",
                "step_s_median",
                "vit_gflops",
                "matmul_gflops",
                "ratio_vit_over_matmul",
                "time_share_linear",
                "ratio_linear_over_matmul",
                "time_share_attention",
                "ratio_attention_over_matmul",
            ],
        )
    )
    print("\nTwo routes to a faster ViT step (default preset, same process)")
    print(
        table(
            list(out["routes"].values()),
            [
                "step_fp32_s",
                "step_bf16_autocast_s",
                "step_compiled_blocks_s",
                "compile_s",
                "matmul_float32_gflops",
                "matmul_bfloat16_gflops",
            ],
        )
    )
    print("\nGAT denoiser, all genes (measured)")
    print(
        table(
            list(out["gat"].values()),
            ["preset", "n_genes", "hidden", "t_epoch_s", "peak_rss_mb", "full_gat_epochs"],
        )
    )
    print("\ntl.darlc, 1 pretrain + 1 joint epoch, gat_epochs=1 (measured)")
    print(
        table(
            list(out["darlc"].values()),
            [
                "preset",
                "n_genes",
                "k",
                "t_total_s",
                "t_pretrain_epoch_s",
                "t_joint_epoch_s",
                "t_joint_em_s",
                "peak_rss_mb",
                "error",
            ],
        )
    )
    print("\nFull schedule on all genes (EXTRAPOLATED, linear in genes and epochs)")
    print(
        table(
            list(out["extrapolated"].values()),
            ["preset", "schedule", "gene_scale", "gat_s", "pretrain_s", "joint_s", "total_h"],
        )
    )
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 genes for both presets")
    parser.add_argument("--n-fast", type=int, default=None, help="gene subset for 'fast' (all)")
    parser.add_argument("--n-paper", type=int, default=1000, help="gene subset for 'paper'")
    parser.add_argument(
        "--parts",
        default="flops,gat,darlc,routes",
        help="parts to measure; the others are re-used from the last result file",
    )
    args = parser.parse_args()
    main(args.quick, args.n_fast, args.n_paper, tuple(args.parts.split(",")))
