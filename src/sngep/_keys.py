"""Every AnnData slot name sngep reads or writes, in one place (see DESIGN.md, storage contract)."""

GENE_IMAGES = "gene_images"  # .varm (n_vars, H, W) and .uns
GENE_IMAGE_PIXEL = "gene_image_pixel"  # .obsm (n_obs, 2) int
SPATIAL = "spatial"  # .obsm coordinates
SEED_SIMILARITY = "seed_similarity"  # .varp and .uns[...]['params']
ESTIMATE_K = "estimate_k"  # .uns
DARLC = "darlc"  # .var (labels), .uns
X_DARLC = "X_darlc"  # .varm embedding
DARLC_SOFT = "darlc_soft"  # .varm soft assignments


def denoised(key: str = DARLC) -> str:
    """``.varm`` key of the denoised positive views written by ``tl.darlc(key_added=key)``."""
    return f"{key}_denoised"
GENE_IMAGES_STD = "gene_images_std"  # .varm and .uns, pp.standardize_images
DARLC_SCORES = "darlc_scores"  # .obsm
