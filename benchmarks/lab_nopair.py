"""The lab's DARLC run with ``clr_neighbours=10`` but plain shuffled batches (tag
``NB10-nopair``): neighbours are positives only where they meet in a batch by chance, so
this tells the paired batches' share of the effect from the positives'. Not a switch.

    python -m benchmarks.lab_nopair mob syn_d80 --seeds 0 1 2
"""

import sys

import sngep.models.darlc.train as tr
from benchmarks import lab

_set_neighbours = tr._set_neighbours


def _graph_only(data, similarity, device) -> None:
    _set_neighbours(data, similarity, device)
    data.neighbour_lists = None  # keep the graph (the positives), drop the paired batches


if __name__ == "__main__":
    tr._set_neighbours = _graph_only
    lab.main(["darlc", *sys.argv[1:], "--set", "clr_neighbours=10", "--tag", "NB10-nopair"])
