"""The DARLC model object: fit, embed new images, predict, save and load."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sngep.models.darlc._device import resolve_device
from sngep.models.darlc.config import DARLCConfig
from sngep.models.darlc.losses import normalized_similarity
from sngep.models.darlc.train import (
    DARLCNet,
    embed_all,
    fit,
    lap_weights,
    mixture_z,
    normalise_images,
)
from sngep.models.darlc.views import denoise_new, make_views

_FORMAT = 1


class DARLC:
    """Dual Advancement of Representation Learning and Clustering (Li et al., ACM MM 2024).

    Parameters
    ----------
    n_clusters
        Number of gene clusters K (SMM components).
    preset
        ``'paper'`` or ``'fast'`` (see :class:`~sngep.models.darlc.config.DARLCConfig`).
    device
        ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
    random_state
        Seed of every random choice; the same seed on CPU gives identical embeddings.
    **options
        Any :class:`DARLCConfig` field (``epochs``, ``use_clr``, ``augment``, ``mixture``, ...).

    Attributes
    ----------
    embedding_
        ``(N, latent_dim)`` z of the training images (after :meth:`fit`).
    soft_
        ``(N, K)`` soft assignments Q (eq. 19 normalised).
    labels_
        ``(N,)`` hard cluster labels.
    views_
        The denoised positive views used for contrastive learning.
    denoiser_
        The trained per-image GAT (``augment='gat'``), which smooths new images for
        :meth:`embed` when ``encoder_input='view'``; ``None`` otherwise.
    history_
        Per-epoch loss terms and label change.
    summary_
        How training went: ``stop_reason`` (``'tol'``: labels settled; ``'max_epochs'``),
        ``n_joint_epochs``, ``n_pretrain_steps``, ``patch_size``, ``n_tokens``.
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        preset: str = "paper",
        device: str = "auto",
        random_state: int | None = 0,
        **options: Any,
    ) -> None:
        if int(n_clusters) < 2:
            msg = f"n_clusters must be >= 2, got {n_clusters}"
            raise ValueError(msg)
        self.n_clusters = int(n_clusters)
        self.config = DARLCConfig.from_preset(preset, **options)
        self.device = resolve_device(device)
        self.random_state = 0 if random_state is None else int(random_state)
        self.net: DARLCNet | None = None
        self.var_names: list[str] | None = None
        self.image_shape: tuple[int, int] | None = None
        self.history_: dict[str, list[float]] = {}
        self.summary_: dict[str, Any] = {}
        self.denoiser_ = None

    # ------------------------------------------------------------------ training
    def fit(
        self,
        images: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        similarity: Any = None,
        views: np.ndarray | None = None,
        var_names: Sequence[str] | None = None,
        show_progress_bar: bool = True,
    ) -> DARLC:
        """Train on ``(N, H, W)`` images.

        ``similarity`` is the seeding similarity for L_lap (required unless ``use_lap=False``),
        the neighbour positives of L_clr (required unless ``clr_neighbours=0``) and the
        mixture's start (``cluster_init='seed_similarity'``);
        ``views`` overrides the denoised positive views (otherwise made per ``augment``).
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3:
            msg = f"images must be (N, H, W), got shape {images.shape}"
            raise ValueError(msg)
        n = images.shape[0]
        if self.n_clusters > n:
            msg = f"n_clusters ({self.n_clusters}) is larger than the number of images ({n})"
            raise ValueError(msg)
        if not np.all(np.isfinite(images)):
            msg = "images contain NaN or infinite values"
            raise ValueError(msg)
        if mask is None:
            mask = np.ones(images.shape[1:], dtype=bool)
        if self.config.use_lap and similarity is None:
            msg = "use_lap=True needs the seeding similarity (sngep.tl.seed_similarity); or pass use_lap=False"
            raise ValueError(msg)
        if self.config.prox_reads_similarity and similarity is None:
            msg = (
                "lap_prox > 0 over lap_graph='similarity' needs the seeding similarity "
                "(sngep.tl.seed_similarity); lap_graph='views' does not"
            )
            raise ValueError(msg)
        if self.config.uses_neighbours and similarity is None:
            msg = "clr_neighbours > 0 needs the seeding similarity (sngep.tl.seed_similarity)"
            raise ValueError(msg)
        if views is not None and self.config.clr_view_steps > 0:
            msg = (
                "clr_view_steps smooths the images at shifted bandwidths around the views it "
                "makes itself; with views=... pass clr_view_steps=0"
            )
            raise ValueError(msg)
        x = normalise_images(images, mask)
        t_views = time.perf_counter()
        self.denoiser_ = None
        if views is None:
            views, info = make_views(
                x,
                mask,
                self.config,
                device=self.device,
                random_state=self.random_state,
                show_progress_bar=show_progress_bar,
            )
            views = normalise_images(views, mask)
            self.denoiser_ = info.get("denoiser")
        else:
            views = normalise_images(np.asarray(views, dtype=np.float32), mask)
        t_views = time.perf_counter() - t_views
        encoder_x = views if self.config.encoder_input == "view" else x
        self.net, self.history_, self.summary_ = fit(
            encoder_x,
            views,
            self.config,
            n_clusters=self.n_clusters,
            similarity=similarity,
            mask=mask,
            device=self.device,
            random_state=self.random_state,
            show_progress_bar=show_progress_bar,
        )
        self.summary_["seconds"] = {"views": t_views, **self.summary_.get("seconds", {})}
        self.views_ = views
        self.image_shape = tuple(int(s) for s in images.shape[1:])
        self.mask = np.asarray(mask, dtype=bool)
        self.var_names = None if var_names is None else [str(v) for v in var_names]
        self.embedding_ = self._embed_normalised(encoder_x)
        graph = self.summary_.pop("_lap_graph", None)  # lap_graph='consensus'
        if self.config.lap_prox > 0:  # the z the mixture was trained on (train.mixture_z)
            a = normalized_similarity(similarity) if graph is None else graph.cpu()
            w = lap_weights(torch.as_tensor(encoder_x), self.mask, self.config)
            z = mixture_z(torch.as_tensor(self.embedding_), a, self.config, w)
            self.embedding_ = z.numpy().astype(np.float32)
        self.centers_ = None
        if self.net.smm is None:
            from sklearn.cluster import KMeans

            km = KMeans(self.n_clusters, n_init=10, random_state=self.random_state).fit(
                self.embedding_
            )
            self.centers_ = km.cluster_centers_.astype(np.float32)
        self.soft_ = self._soft(self.embedding_)
        self.labels_ = self.soft_.argmax(axis=1)
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> DARLCNet:
        if self.net is None:
            msg = "this DARLC model is not fitted; call fit() or DARLC.load()"
            raise RuntimeError(msg)
        return self.net

    def embed(
        self, images: np.ndarray, *, views: np.ndarray | None = None, batch_size: int = 512
    ) -> np.ndarray:
        """Z (eq. 12) for ``(N, H, W)`` images of the training shape; no retraining.

        With ``encoder_input='view'`` Module I reads denoised images: ``views`` if given,
        else the images smoothed by the trained denoiser (``augment='gat'`` or ``'gks'``).
        With ``lap_prox > 0`` the training genes' ``embedding_`` is z pulled towards each
        gene's neighbours in the seeding similarity; new images have no row in it, so this
        returns their z as the head gives it.
        """
        self._check_fitted()
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or tuple(images.shape[1:]) != self.image_shape:
            msg = f"images must be (N, {self.image_shape[0]}, {self.image_shape[1]}), got {images.shape}"
            raise ValueError(msg)
        if not np.all(np.isfinite(images)):
            msg = "images contain NaN or infinite values"
            raise ValueError(msg)
        x = normalise_images(images, self.mask)
        if self.config.encoder_input == "view":
            if views is None:
                views = denoise_new(x, self.mask, self.config, self.denoiser_)
            elif np.shape(views) != images.shape:
                msg = f"views must have the images' shape {images.shape}, got {np.shape(views)}"
                raise ValueError(msg)
            x = normalise_images(np.asarray(views, dtype=np.float32), self.mask)
        return self._embed_normalised(x, batch_size)

    def _embed_normalised(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        net = self._check_fitted()
        xt = torch.as_tensor(x, device=self.device)
        return embed_all(net, xt, batch_size).cpu().numpy().astype(np.float32)

    def _soft(self, z: np.ndarray) -> np.ndarray:
        net = self._check_fitted()
        if net.smm is None:
            # mixture=None ("w/o SMM" ablation): k-means on z after training, returned one-hot.
            d = ((z[:, None, :] - self.centers_[None]) ** 2).sum(-1)
            return np.eye(self.n_clusters, dtype=np.float32)[d.argmin(axis=1)]
        with torch.no_grad():
            q = net.smm.soft_assign(torch.as_tensor(z, device=self.device))
        return q.cpu().numpy().astype(np.float32)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hard labels and soft assignments Q for new images (with ``lap_prox > 0`` the mixture
        was fitted to the training genes' z pulled towards their neighbours in S, which new
        images do not have: their z is the head's, as :meth:`embed` returns it)."""
        q = self._soft(self.embed(images))
        return q.argmax(axis=1), q

    def smm_parameters(self) -> dict[str, np.ndarray]:
        """``{'pi', 'mu', 'sigma', 'nu'}`` of the fitted SMM as numpy arrays (empty without SMM)."""
        net = self._check_fitted()
        if net.smm is None:
            return {}
        with torch.no_grad():
            return {
                "pi": net.smm.pi.cpu().numpy(),
                "mu": net.smm.mu.detach().cpu().numpy(),
                "sigma": net.smm.sigma.cpu().numpy(),
                "nu": net.smm.nu.cpu().numpy(),
            }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``{'state_dict', 'config', 'var_names', 'version', ...}`` with :func:`torch.save`."""
        from sngep import __version__

        net = self._check_fitted()
        torch.save(
            {
                "format": _FORMAT,
                "version": __version__,
                "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
                "config": self.config.to_dict(),
                "n_clusters": self.n_clusters,
                "random_state": self.random_state,
                "var_names": self.var_names,
                "image_shape": list(self.image_shape),
                "mask": self.mask,
                "centers": self.centers_,
                "history": self.history_,
                "summary": self.summary_,
                "denoiser": _denoiser_state(self.denoiser_),
            },
            Path(path),
        )

    @classmethod
    def load(
        cls, path: str | Path, *, var_names: Sequence[str] | None = None, device: str = "auto"
    ) -> DARLC:
        """Load a model written by :meth:`save`.

        ``var_names``, when given, must equal the saved ones (same genes in the same order).
        """
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT or "state_dict" not in ckpt:
            msg = f"{path} is not a sngep DARLC checkpoint (format {_FORMAT})"
            raise ValueError(msg)
        if (
            var_names is not None
            and ckpt["var_names"] is not None
            and list(map(str, var_names)) != ckpt["var_names"]
        ):
            msg = "var_names differ from the ones the model was trained on"
            raise ValueError(msg)
        config = DARLCConfig.from_dict(ckpt["config"])
        model = cls.__new__(cls)
        model.n_clusters = int(ckpt["n_clusters"])
        model.config = config
        model.device = resolve_device(device)
        model.random_state = int(ckpt["random_state"])
        model.var_names = ckpt["var_names"]
        model.image_shape = tuple(ckpt["image_shape"])
        model.mask = np.asarray(ckpt["mask"], dtype=bool)
        model.history_ = ckpt.get("history", {})
        model.summary_ = ckpt.get("summary", {})
        model.centers_ = ckpt.get("centers")
        net = DARLCNet(model.image_shape, config, model.n_clusters, mask=model.mask)
        net.load_state_dict(ckpt["state_dict"])
        model.net = net.to(model.device).eval()
        model.denoiser_ = _load_denoiser(ckpt.get("denoiser"))
        return model


def _denoiser_state(denoiser: Any) -> dict[str, Any] | None:
    if denoiser is None:
        return None
    state = {k: v.detach().cpu() for k, v in denoiser.state_dict().items()}
    return {"hidden": denoiser.hidden, "latent": denoiser.latent, "state_dict": state}


def _load_denoiser(saved: dict[str, Any] | None):
    if saved is None:
        return None
    from sngep.models.darlc.gat_image import ImageGAT

    denoiser = ImageGAT(saved["hidden"], saved["latent"])
    denoiser.load_state_dict(saved["state_dict"])
    return denoiser.eval()
