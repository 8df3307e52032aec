"""Regenerate ``benchmarks/data/dlpfc_symbols.tsv``: Ensembl gene id -> HGNC symbol.

The DLPFC loader keeps Ensembl ids only; the gene-family labels of ``benchmarks.run`` need
symbols. The map comes from Bioconductor's org.Hs.eg.db (Debian package
``r-bioc-org.hs.eg.db``, tested with 3.16.0-1), restricted to the genes of the two DLPFC
samples so the committed file stays small::

    apt-get download r-bioc-org.hs.eg.db && dpkg -x r-bioc-org.hs.eg.db_*.deb /tmp/orgdb
    python -m benchmarks.make_dlpfc_symbols /tmp/orgdb/usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

OUT = Path(__file__).parent / "data" / "dlpfc_symbols.tsv"


def main(sqlite_path: str) -> Path:
    import sngep

    ids: set[str] = set()
    for sample in ("151673", "151674"):
        try:
            ids |= set(sngep.datasets.dlpfc(sample).var_names)
        except Exception as err:  # noqa: BLE001 - a missing sample only shrinks the map
            print(f"skipping {sample}: {err}")
    con = sqlite3.connect(sqlite_path)
    rows = con.execute(
        "select e.ensembl_id, g.symbol from ensembl e join gene_info g on e._id = g._id"
    ).fetchall()
    symbols: dict[str, set[str]] = {}
    for ens, sym in rows:
        if ens in ids:
            symbols.setdefault(ens, set()).add(sym)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ["ensembl_id\tsymbol"]
    lines += [f"{e}\t{'|'.join(sorted(s))}" for e, s in sorted(symbols.items())]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{len(symbols)} of {len(ids)} ids mapped -> {OUT}")
    return OUT


if __name__ == "__main__":
    main(sys.argv[1])
