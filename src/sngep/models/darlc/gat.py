"""The graph-attention denoiser of DARLC (main 3.2.1, eqs. 1-5; impl. details 4.1.5).

DARLC's positive views are gene images smoothed by a graph attention auto-encoder trained
on the *spot* graph: the nodes are spots (in-tissue pixels of the gene images), the node
features are the genes (``C = n_genes``), and the reconstruction, scattered back onto the
pixel grid, gives one smoothed image per gene. The paper follows STAGATE (Dong & Zhang,
Nat. Commun. 2022, ref. [13]); so does this module, written from the papers:

- encoder ``C -> hidden -> latent`` (C-512-30), one attention head, no biases;
  layer 1 is a graph attention layer followed by ELU, layer 2 is linear;
- decoder mirrors it with **tied weights**: layer 3 uses ``W2.T`` and re-uses the attention
  coefficients of layer 1 (tied attention), followed by ELU; layer 4 is ``W1.T``, linear.
  Tying is done in the autograd graph (the decoder multiplies by a transposed view of the
  encoder parameter), so the reconstruction loss trains the encoder weights through both
  paths, and the decoder owns no weights of its own;
- attention: ``alpha_ij = softmax_j(sigmoid(a_dst . W h_i + a_src . W h_j))`` over the
  neighbours ``j`` of ``i`` (self included), STAGATE's choice;
- loss: mean squared error of the reconstruction; Adam (lr 1e-3, weight decay 1e-4),
  gradient-norm clipping at 5, full batch.

Where this differs from the paper's text, and why: eq. 1 writes a LeakyReLU activation and
eq. 2 the LeakyReLU attention of the original GAT, and eq. 4 sums unsquared L2 norms; the
paper cites STAGATE for the network, whose published model uses ELU, sigmoid attention and
MSE, and DESIGN.md section 4.2 fixes those. Eq. 1 lists the neighbours "within a radius r"
while the text above it says k nearest neighbours: :func:`spot_graph` offers both.

Graph convention: ``edge_index`` is a ``(2, E)`` long tensor, row 0 the source ``j``, row 1
the target ``i`` (PyG's ``source_to_target`` flow). Graphs from :func:`spot_graph` are
symmetric and hold each self loop exactly once, added explicitly as STAGATE does (it adds
the identity to its spatial network and switches the layer's own self-loop insertion off);
:func:`denoise_gat` normalises any given graph the same way.

The Gaussian-kernel-smoothing ablation of Table 4 ("GAT -> GKS") is :func:`denoise_gks`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.spatial import cKDTree
from torch import nn
from torch_geometric.utils import softmax as edge_softmax

from sngep._progress import progress
from sngep.models.darlc._device import adam, resolve_device

__all__ = [
    "GATAutoencoder",
    "GATConvTied",
    "denoise_gat",
    "denoise_gks",
    "spot_graph",
]

_GAIN = 1.414  # STAGATE's Xavier-normal gain for weights and attention vectors


# --------------------------------------------------------------------------------------
# the spot graph
# --------------------------------------------------------------------------------------
def spot_graph(
    coords: np.ndarray,
    *,
    method: str = "knn",
    n_neighbors: int = 6,
    radius: float | None = None,
    self_loops: bool = True,
) -> torch.Tensor:
    """Undirected, unweighted spot graph from spot coordinates (main 3.2.1).

    Parameters
    ----------
    coords
        ``(n_spots, d)`` coordinates, usually ``d = 2``: the pixel ``(row, col)`` of every
        spot (``adata.obsm['gene_image_pixel']``) or ``obsm['spatial']``.
    method
        ``"knn"``: each spot is joined to its ``n_neighbors`` nearest spots
        (:meth:`scipy.spatial.cKDTree.query`; ties at equal distance are broken by the
        tree's order). ``"radius"``: each spot is joined to every spot at distance
        ``<= radius`` (a relative tolerance of 1e-9 absorbs rounding, so on an integer pixel
        grid ``radius=1`` gives the 4-neighbourhood and ``radius=math.sqrt(2)`` the
        8-neighbourhood).
    n_neighbors
        Neighbours per spot for ``method="knn"``.
    radius
        Distance threshold for ``method="radius"`` (required there).
    self_loops
        Add every self loop ``(i, i)`` exactly once (STAGATE's ``A + I``).

    Returns
    -------
    ``(2, E)`` :class:`torch.LongTensor` ``edge_index``: symmetric (the kNN relation is
    symmetrised, ``i ~ j`` if either picks the other), without duplicate edges, sorted by
    target then source.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[0] == 0:
        msg = f"coords must be a non-empty (n_spots, d) array, got shape {coords.shape}"
        raise ValueError(msg)
    if not np.all(np.isfinite(coords)):
        msg = "coords contains NaN or infinite values; drop those spots first"
        raise ValueError(msg)
    n = coords.shape[0]
    tree = cKDTree(coords)
    if method == "knn":
        if int(n_neighbors) != n_neighbors or n_neighbors < 1:
            msg = f"n_neighbors must be a positive integer, got {n_neighbors!r}"
            raise ValueError(msg)
        n_neighbors = int(n_neighbors)
        if n_neighbors >= n:
            msg = f"n_neighbors={n_neighbors} must be smaller than the number of spots ({n})"
            raise ValueError(msg)
        _, idx = tree.query(coords, k=n_neighbors + 1)
        idx = idx.reshape(n, n_neighbors + 1)
        keep = idx != np.arange(n)[:, None]
        # duplicated coordinates can push a spot's own index out of its list: drop the farthest
        no_self = keep.all(axis=1)
        keep[no_self, -1] = False
        src = idx[keep]
        dst = np.repeat(np.arange(n), n_neighbors)
    elif method == "radius":
        if radius is None or not np.isfinite(radius) or radius <= 0:
            msg = f"method='radius' needs a positive finite radius, got radius={radius!r}"
            raise ValueError(msg)
        pairs = tree.query_pairs(float(radius) * (1.0 + 1e-9), output_type="ndarray")
        src, dst = pairs[:, 0], pairs[:, 1]
    else:
        msg = f"method must be 'knn' or 'radius', got {method!r}"
        raise ValueError(msg)

    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    off = src != dst
    src, dst = src[off], dst[off]
    if self_loops:
        loop = np.arange(n, dtype=np.int64)
        src, dst = np.concatenate([src, loop]), np.concatenate([dst, loop])
    key = np.unique(dst * n + src)  # sorted by target, then source; duplicates removed
    edge_index = np.stack([key % n, key // n])
    return torch.from_numpy(edge_index)


def _with_self_loops(edge_index: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Remove duplicate edges and self loops, then add each self loop once."""
    src, dst = edge_index
    off = src != dst
    loop = torch.arange(n_nodes, dtype=edge_index.dtype, device=edge_index.device)
    src = torch.cat([src[off], loop])
    dst = torch.cat([dst[off], loop])
    key = torch.unique(dst * n_nodes + src)
    return torch.stack([key % n_nodes, torch.div(key, n_nodes, rounding_mode="floor")])


# --------------------------------------------------------------------------------------
# the layers
# --------------------------------------------------------------------------------------
class _EdgeCSR:
    """The CSR layouts of one ``edge_index`` (``j -> i`` as row ``i``, column ``j``) and of
    its transpose, with the permutations that put per-edge values in their order."""

    def __init__(self, edge_index: torch.Tensor, n_nodes: int) -> None:
        src, dst = edge_index
        self.edge_index, self.n = edge_index, int(n_nodes)
        self.order = torch.argsort(dst * n_nodes + src)
        self.order_t = torch.argsort(src * n_nodes + dst)
        self.col, self.col_t = src[self.order], dst[self.order_t]
        self.crow = self._crow(dst)
        self.crow_t = self._crow(src)

    def _crow(self, rows: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(rows, minlength=self.n)
        return torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    def matrix(self, values: torch.Tensor, *, transpose: bool = False) -> torch.Tensor:
        """The sparse ``(n, n)`` matrix holding ``values`` (one per edge, in edge order)."""
        crow, col, order = (
            (self.crow_t, self.col_t, self.order_t)
            if transpose
            else (self.crow, self.col, self.order)
        )
        with warnings.catch_warnings():  # torch calls its CSR layout beta on first use
            warnings.filterwarnings(
                "ignore", message="Sparse (CSR tensor support|invariant checks)"
            )
            return torch.sparse_csr_tensor(crow, col, values[order], (self.n, self.n))


class _EdgeSum(torch.autograd.Function):
    """``out_i = sum_j alpha_ij h_j`` over the edges ``j -> i`` as one sparse CSR product.

    Gathering ``h_j`` for every edge, scaling and scattering (message passing) moves
    ``E x C`` floats three times per pass and took most of a GAT epoch on the CPU (issue
    11); the CSR product touches each edge once. Backward: ``dh = A^T dout`` (the
    transposed CSR) and ``dalpha_ij = dout_i . h_j`` (a sampled dense-dense product at the
    edges).
    """

    @staticmethod
    def forward(ctx, alpha: torch.Tensor, h: torch.Tensor, csr: _EdgeCSR) -> torch.Tensor:  # noqa: D102
        ctx.csr = csr
        ctx.save_for_backward(alpha, h)
        return csr.matrix(alpha) @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        alpha, h = ctx.saved_tensors
        csr = ctx.csr
        grad = grad.contiguous()
        d_h = csr.matrix(alpha, transpose=True) @ grad if ctx.needs_input_grad[1] else None
        d_alpha = None
        if ctx.needs_input_grad[0]:
            pattern = csr.matrix(torch.zeros_like(alpha))
            at_edges = torch.sparse.sampled_addmm(pattern, grad, h.t(), beta=0.0).values()
            d_alpha = torch.empty_like(alpha)
            d_alpha[csr.order] = at_edges
        return d_alpha, d_h, None


class GATConvTied(nn.Module):
    """Single-head graph attention layer with optional weight and attention tying.

    Computes ``h = x @ W`` and then, depending on the mode,

    - own attention (``attention=True``, untied): ``out_i = sum_j alpha_ij h_j`` with
      ``alpha_ij = softmax_j(sigmoid(a_dst . h_i + a_src . h_j))`` over the edges
      ``j -> i`` of ``edge_index`` (no self loops are added here: give them in the graph);
    - tied attention (``alpha`` passed to :meth:`forward`): the same sum with given
      per-edge coefficients, e.g. those of the mirrored encoder layer;
    - linear (neither): ``out = h``, no message passing (STAGATE's last encoder and
      decoder layers).

    Parameters
    ----------
    in_channels
        Input features per node.
    out_channels
        Output features per node.
    attention
        Own the attention vectors ``a_src``, ``a_dst`` (shape ``(out_channels, 1)``).
    tied
        Own no weight: :meth:`forward` must be given ``weight`` of shape
        ``(in_channels, out_channels)`` (a decoder layer passes ``encoder.weight.T``).
    generator
        Local :class:`torch.Generator` for the Xavier-normal initialisation; ``None`` uses
        torch's global RNG.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        attention: bool = True,
        tied: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self._csr: _EdgeCSR | None = None  # the CSR layout of the last edge_index seen
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.tied = bool(tied)
        self.attention = bool(attention)
        if self.tied:
            self.register_parameter("weight", None)
        else:
            self.weight = nn.Parameter(torch.empty(self.in_channels, self.out_channels))
        if self.attention:
            self.att_src = nn.Parameter(torch.empty(self.out_channels, 1))
            self.att_dst = nn.Parameter(torch.empty(self.out_channels, 1))
        else:
            self.register_parameter("att_src", None)
            self.register_parameter("att_dst", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Xavier-normal initialisation (gain 1.414, as STAGATE) from ``generator``."""
        for p in (self.weight, self.att_src, self.att_dst):
            if p is not None:
                with torch.no_grad():
                    nn.init.xavier_normal_(p, gain=_GAIN, generator=generator)

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        *,
        weight: torch.Tensor | None = None,
        alpha: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Apply the layer.

        Parameters
        ----------
        x
            ``(n_nodes, in_channels)`` node features (dense, or a torch sparse matrix).
        edge_index
            ``(2, E)`` edges, row 0 source, row 1 target.
        weight
            The tied weight ``(in_channels, out_channels)``; required iff ``tied=True``.
        alpha
            ``(E,)`` attention coefficients to re-use (tied attention); overrides the
            layer's own attention.

        Returns
        -------
        ``(out, alpha)``: ``(n_nodes, out_channels)`` output and the ``(E,)`` attention
        coefficients used (``None`` for a linear layer).
        """
        if self.tied:
            if weight is None:
                msg = "this layer is tied: pass weight=<encoder weight>.T to forward"
                raise ValueError(msg)
            w = weight
        else:
            if weight is not None:
                msg = "this layer owns its weight; weight= is only for tied layers"
                raise ValueError(msg)
            w = self.weight
        if tuple(w.shape) != (self.in_channels, self.out_channels):
            want = (self.in_channels, self.out_channels)
            msg = f"weight must have shape {want}, got {tuple(w.shape)}"
            raise ValueError(msg)
        h = torch.sparse.mm(x, w) if x.is_sparse or x.layout == torch.sparse_csr else x @ w
        if alpha is None and self.attention:
            src, dst = edge_index
            score_src = (h @ self.att_src).squeeze(-1)
            score_dst = (h @ self.att_dst).squeeze(-1)
            logits = torch.sigmoid(score_src[src] + score_dst[dst])
            alpha = edge_softmax(logits, dst, num_nodes=h.shape[0])
        if alpha is None:
            return h, None
        if alpha.shape != (edge_index.shape[1],):
            n_e = edge_index.shape[1]
            msg = f"alpha must have one value per edge ({n_e}), got shape {tuple(alpha.shape)}"
            raise ValueError(msg)
        csr = self._csr
        if csr is None or csr.edge_index is not edge_index or csr.n != h.shape[0]:
            csr = self._csr = _EdgeCSR(edge_index, h.shape[0])  # one per graph, not per pass
        return _EdgeSum.apply(alpha.to(h.dtype), h.contiguous(), csr), alpha

    def __repr__(self) -> str:
        mode = "tied" if self.tied else ("attention" if self.attention else "linear")
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, {mode})"


class GATAutoencoder(nn.Module):
    """STAGATE-style graph attention auto-encoder ``C -> hidden -> latent -> hidden -> C``.

    Parameters
    ----------
    n_features
        Node features ``C`` (the number of genes).
    hidden
        Width of the hidden layer (512 in the paper).
    latent
        Width of the bottleneck (30 in the paper).
    generator
        Local :class:`torch.Generator` for the initialisation (the global RNG is not used).

    Notes
    -----
    The trainable parameters are ``conv1.weight`` ``(C, hidden)``, ``conv1.att_src``,
    ``conv1.att_dst`` ``(hidden, 1)`` and ``conv2.weight`` ``(hidden, latent)``; the decoder
    layers ``conv3``/``conv4`` own none (``C*hidden + 2*hidden + hidden*latent`` in all).
    """

    def __init__(
        self,
        n_features: int,
        hidden: int = 512,
        latent: int = 30,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        for name, val in (("n_features", n_features), ("hidden", hidden), ("latent", latent)):
            if int(val) != val or val < 1:
                msg = f"{name} must be a positive integer, got {val!r}"
                raise ValueError(msg)
        self.n_features, self.hidden, self.latent = int(n_features), int(hidden), int(latent)
        g = generator
        self.conv1 = GATConvTied(self.n_features, self.hidden, attention=True, generator=g)
        self.conv2 = GATConvTied(self.hidden, self.latent, attention=False, generator=g)
        self.conv3 = GATConvTied(self.latent, self.hidden, attention=False, tied=True)
        self.conv4 = GATConvTied(self.hidden, self.n_features, attention=False, tied=True)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise every parameter from ``generator``."""
        self.conv1.reset_parameters(generator)
        self.conv2.reset_parameters(generator)

    def encode(
        self, x: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the latent ``(n_nodes, latent)`` and layer 1's attention ``(E,)``."""
        h1, alpha = self.conv1(x, edge_index)
        z, _ = self.conv2(F.elu(h1), edge_index)
        return z, alpha

    def decode(
        self, z: torch.Tensor, edge_index: torch.Tensor, alpha: torch.Tensor
    ) -> torch.Tensor:
        """Reconstruct ``(n_nodes, C)`` from the latent with tied weights and attention."""
        h3, _ = self.conv3(z, edge_index, weight=self.conv2.weight.t(), alpha=alpha)
        out, _ = self.conv4(F.elu(h3), edge_index, weight=self.conv1.weight.t())
        return out

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(latent, reconstruction)``."""
        z, alpha = self.encode(x, edge_index)
        return z, self.decode(z, edge_index, alpha)


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
def _check_edge_index(edge_index: Any, n_nodes: int) -> torch.Tensor:
    if not isinstance(edge_index, torch.Tensor):
        edge_index = torch.as_tensor(np.asarray(edge_index))
    ei = edge_index
    if ei.ndim != 2 or ei.shape[0] != 2:
        msg = f"edge_index must have shape (2, E), got {tuple(ei.shape)}; build it with spot_graph"
        raise ValueError(msg)
    if ei.dtype.is_floating_point or ei.dtype == torch.bool:
        msg = f"edge_index must hold integers, got {ei.dtype}"
        raise TypeError(msg)
    ei = ei.to(torch.long).cpu()
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n_nodes):
        msg = f"edge_index refers to nodes outside 0..{n_nodes - 1}; it must index the rows of x"
        raise ValueError(msg)
    return ei


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if int(random_state) != random_state or random_state < 0:
        msg = f"random_state must be a non-negative integer or None, got {random_state!r}"
        raise ValueError(msg)
    return int(random_state)


def check_optimiser(lr: float, weight_decay: float, gradient_clipping: float) -> None:
    """Raise ``ValueError`` unless ``lr`` and ``gradient_clipping`` are finite and positive
    and ``weight_decay`` is finite and >= 0 (the GAT trainers' Adam settings)."""
    for name, val in (("lr", lr), ("gradient_clipping", gradient_clipping)):
        if not (np.isfinite(val) and val > 0):
            msg = f"{name} must be positive, got {val!r}"
            raise ValueError(msg)
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        msg = f"weight_decay must be >= 0, got {weight_decay!r}"
        raise ValueError(msg)


def denoise_gat(
    x: np.ndarray,
    edge_index: torch.Tensor | np.ndarray,
    *,
    hidden: int = 512,
    latent: int = 30,
    epochs: int = 500,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    gradient_clipping: float = 5.0,
    clip_negative: bool = True,
    device: str = "auto",
    random_state: int | None = 0,
    show_progress_bar: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the GAT auto-encoder on the spot graph and return its reconstruction (eq. 5).

    Parameters
    ----------
    x
        ``(n_spots, n_genes)`` expression (one row per spot, one column per gene; a scipy
        sparse matrix is densified). Used as given: no scaling inside, so the
        reconstruction is in the input's scale.
    edge_index
        ``(2, E)`` spot graph, e.g. from :func:`spot_graph`. Duplicate edges are merged and
        each self loop is kept exactly once (added where missing).
    hidden, latent
        Encoder widths (C-512-30 in the paper).
    epochs
        Full-batch training epochs (the paper does not say; STAGATE uses 1000).
    lr, weight_decay
        Adam settings (STAGATE's).
    gradient_clipping
        Maximum gradient norm over all parameters (STAGATE's 5).
    clip_negative
        Set negative reconstructed values to 0, as STAGATE does for its reconstruction;
        turn off for signed input.
    device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
    random_state
        Seed of the local :class:`torch.Generator` that initialises the parameters; the
        global torch RNG is neither read nor changed (training is full batch without
        dropout, so the initialisation is the only random step). ``None``: fresh entropy.
        The same seed on CPU gives the same reconstruction; on CUDA the sparse products
        of the attention layers are not guaranteed to be bitwise deterministic.
    show_progress_bar
        Show a progress bar over epochs with the loss (:func:`sngep._progress.progress`).

    Returns
    -------
    ``(reconstruction, history)``: the ``(n_spots, n_genes)`` float32 reconstruction and
    ``{'loss': [MSE per epoch, before that epoch's update], 'final_loss': MSE of the
    returned reconstruction before clipping, 'n_edges': E with self loops}``.
    """
    if sp.issparse(x):
        x = x.toarray()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        msg = f"x must be a non-empty (n_spots, n_genes) array, got shape {x.shape}"
        raise ValueError(msg)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        msg = f"x must be real-valued, got dtype {x.dtype}"
        raise TypeError(msg)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        msg = "x contains NaN or infinite values; impute or drop them first"
        raise ValueError(msg)
    if int(epochs) != epochs or epochs < 1:
        msg = f"epochs must be a positive integer, got {epochs!r}"
        raise ValueError(msg)
    check_optimiser(lr, weight_decay, gradient_clipping)
    n_spots, n_genes = x.shape
    ei = _with_self_loops(_check_edge_index(edge_index, n_spots), n_spots)
    dev = resolve_device(device)
    generator = torch.Generator().manual_seed(_seed(random_state))

    model = GATAutoencoder(n_genes, hidden, latent, generator=generator).to(dev)
    xt = torch.from_numpy(x).to(dev)
    ei = ei.to(dev)
    optimizer = adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    losses: list[float] = []
    model.train()
    bar = progress(
        range(int(epochs)), desc="GAT denoiser", unit="epoch", disable=not show_progress_bar
    )
    for _ in bar:
        optimizer.zero_grad(set_to_none=True)
        _, rec = model(xt, ei)
        loss = F.mse_loss(rec, xt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clipping)
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4g}")
    bar.close()

    model.eval()
    with torch.no_grad():
        _, rec = model(xt, ei)
        final = float(F.mse_loss(rec, xt))
        if clip_negative:
            rec = rec.clamp_min_(0.0)
        out = rec.cpu().numpy().astype(np.float32, copy=False)
    history = {"loss": losses, "final_loss": final, "n_edges": int(ei.shape[1])}
    return out, history


# --------------------------------------------------------------------------------------
# ablation: Gaussian kernel smoothing
# --------------------------------------------------------------------------------------
def denoise_gks(images: np.ndarray, mask: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """Gaussian kernel smoothing inside the tissue (ablation "GAT -> GKS", paper Table 4).

    Normalised convolution: ``G * (image * mask) / G * mask`` with a Gaussian ``G`` of
    standard deviation ``sigma`` pixels along the two image axes, so pixels outside the
    tissue (and outside the image) count as missing rather than as zeros and the tissue
    border is not darkened. Pixels outside the mask are 0 in the result.

    Parameters
    ----------
    images
        ``(n_genes, H, W)`` gene images (a single ``(H, W)`` image is accepted).
    mask
        ``(H, W)`` boolean tissue mask.
    sigma
        Kernel standard deviation in pixels; 0 returns the masked input.

    Returns
    -------
    Smoothed images, same shape as ``images``, float32.
    """
    images = np.asarray(images)
    single = images.ndim == 2
    if single:
        images = images[None]
    if images.ndim != 3:
        msg = f"images must have shape (n_genes, H, W), got {images.shape}"
        raise ValueError(msg)
    mask = np.asarray(mask)
    if mask.shape != images.shape[1:]:
        msg = f"mask shape {mask.shape} does not match the image shape {images.shape[1:]}"
        raise ValueError(msg)
    mask = mask.astype(bool)
    if not (np.isfinite(sigma) and sigma >= 0):
        msg = f"sigma must be >= 0, got {sigma!r}"
        raise ValueError(msg)
    masked = np.where(mask[None], images, 0).astype(np.float32)
    if sigma == 0:
        return masked[0] if single else masked
    if not np.all(np.isfinite(masked)):
        msg = "images contain NaN or infinite values inside the mask; impute them first"
        raise ValueError(msg)
    num = ndimage.gaussian_filter(
        masked, sigma=sigma, axes=(1, 2), mode="constant", cval=0.0, output=np.float32
    )
    den = ndimage.gaussian_filter(mask.astype(np.float64), sigma=sigma, mode="constant", cval=0.0)
    den = np.where(mask, den, 1.0).astype(np.float32)  # > 0 inside the mask (centre weight)
    out = np.where(mask[None], num / den[None], np.float32(0.0)).astype(np.float32)
    return out[0] if single else out
