"""The series cap across processes: which label sets of a metric the merged exposition keeps.

Each client caps its own series (``_client``), but in multiprocess mode every process has its own
budget, so N task processes could expose N x cap label sets of one metric. The exposition merges
every process's files, so the cap is enforced there, on the merged view (see ``_exposition``):

- A metric exposes at most ``max_series`` label sets plus its ``__overflow__`` series; the others
  are folded into ``__overflow__`` (counters and histograms add up, gauges keep the most recent).
- Which label sets are kept: the first ones the exposition sees; label sets first seen in the
  same scrape are admitted in sorted order of their (label, value) pairs. Admitted sets are
  stored in ``.mlwf-stats-bridge-series.json`` in the directory and stay admitted for its life,
  so the choice is deterministic and stable across scrapes: a kept series never turns into
  overflow later (unless the cap is lowered: then the earliest ``max_series`` stay kept and the
  rest fold into ``__overflow__``, their totals with them), and a new label set never displaces
  a kept one.
- The bridge's own metrics (``mlwf_stats_bridge_*``) are bookkeeping and are not capped.

Names without a mapping rule are bounded the same way: each client records at most
``max_unmapped`` metric families of them (``_client``), and the merged exposition exposes at
most ``max_unmapped`` such metric names whatever the number of processes. They are told apart by
their help text (``is_unmapped_help``); a metric name that also has an entry of a rule-mapped
family (another process's rules) is never refused. Names are admitted like label sets: the first
ones seen, names first seen in the same scrape in sorted order, stored in the same file under
``"unmapped"`` and kept for the life of the directory. Entries of refused names are neither
exposed nor archived.

An admitted name stays admitted whatever the budget: a lower ``max_unmapped`` later only limits
new admissions. Names whose entries were exposed anyway are admitted past the budget, so nothing
exposed is ever refused (and deleted from the archives) later: names with entries in an archive
(archives only hold exposed names, even if the state file was lost) and names exempt because
some process records them from a rule (it may die and take the exemption with it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from pathlib import Path

from mlwf_stats_bridge._client import OVERFLOW, is_unmapped_help

log = logging.getLogger(__name__)

STATE_FILE = ".mlwf-stats-bridge-series.json"  # not *.db: never read as metrics
#: Metric names the cap leaves alone: the bridge's own accounting.
BOOKKEEPING_PREFIX = "mlwf_stats_bridge_"

#: A label set: sorted (label, value) pairs, without a histogram's ``le``.
Series = tuple[tuple[str, str], ...]


def series_of(typ: str, labels: dict[str, str]) -> Series:
    """Return the label set that identifies a series (a histogram's buckets share one)."""
    return tuple(
        sorted((k, v) for k, v in labels.items() if not (typ == "histogram" and k == "le"))
    )


def is_capped(metric: str, series: Series) -> bool:
    """Return whether ``series`` of ``metric`` is subject to the cap at all."""
    if not series or metric.startswith(BOOKKEEPING_PREFIX):
        return False
    return any(value != OVERFLOW for _, value in series)


def overflow_labels(labels: dict[str, str]) -> dict[str, str]:
    """Return ``labels`` with every value but a histogram bucket's ``le`` set to ``__overflow__``."""
    return {k: (v if k == "le" else OVERFLOW) for k, v in labels.items()}


def unmapped_metrics(metric_helps: dict[str, set[str]]) -> set[str]:
    """Return the metric names subject to the unmapped-name budget, from {metric: help texts}.

    A name counts when every help text of it marks a family without a mapping rule: a name a
    rule produces (somewhere) is never refused, nor is the bridge's own bookkeeping.
    """
    return {
        metric
        for metric, helps in metric_helps.items()
        if not metric.startswith(BOOKKEEPING_PREFIX) and all(map(is_unmapped_help, helps))
    }


class SeriesCap:
    """The admitted label sets of every metric of one multiprocess directory.

    Callers hold the directory's exclusive lock from :meth:`load` to :meth:`save`.
    """

    def __init__(self, directory: Path, max_series: int, max_unmapped: int) -> None:
        self.path = directory / STATE_FILE
        self.max_series = max_series
        self.max_unmapped = max_unmapped
        #: Admitted names without a mapping rule, in admission order (kept beyond a lower cap).
        self._unmapped_order: list[str] = []
        self._unmapped_kept: set[str] = set()
        #: metric → admitted label sets in admission order (kept beyond a later, lower cap).
        self._order: dict[str, list[Series]] = {}
        self._kept: dict[str, set[Series]] = {}
        self._changed = False

    def load(self) -> None:
        """Read the admitted label sets; an unreadable file is logged and started afresh."""
        try:
            raw = json.loads(self.path.read_text())
            order = {
                str(metric): [tuple((str(k), str(v)) for k, v in series) for series in sets]
                for metric, sets in raw["metrics"].items()
            }
            unmapped = raw.get("unmapped", [])  # absent in files written before it existed
            if not isinstance(unmapped, list):
                raise TypeError(f"'unmapped' is a {type(unmapped).__name__}, not a list")
            unmapped_order = [str(name) for name in unmapped]
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            log.warning("mlwf-stats-bridge: ignoring unreadable series file %s: %s", self.path, err)
            return
        self._order = order
        self._kept = {m: set(sets[: self.max_series]) for m, sets in order.items()}
        self._unmapped_order = unmapped_order
        # An admitted name stays admitted whatever the budget: it only limits new admissions.
        self._unmapped_kept = set(unmapped_order)

    def admit(self, seen: dict[str, set[Series]]) -> None:
        """Admit new label sets of each metric while it has room, in sorted order."""
        for metric in sorted(seen):
            order = self._order.setdefault(metric, [])
            kept = self._kept.setdefault(metric, set(order[: self.max_series]))
            room = self.max_series - len(kept)
            if room <= 0:
                continue
            new = sorted(s for s in seen[metric] if s not in kept and is_capped(metric, s))
            for series in new[:room]:
                order.append(series)
                kept.add(series)
                self._changed = True

    def admit_unmapped(self, names: set[str], exposed: Collection[str] = ()) -> None:
        """Admit ``exposed`` (names whose entries were exposed already), past the budget if need
        be, then new names of ``names`` while there is room, each group in sorted order."""
        for name in sorted(set(exposed) - self._unmapped_kept):
            self._unmapped_order.append(name)
            self._unmapped_kept.add(name)
            self._changed = True
        room = self.max_unmapped - len(self._unmapped_kept)
        if room <= 0:
            return
        for name in sorted(names - self._unmapped_kept)[:room]:
            self._unmapped_order.append(name)
            self._unmapped_kept.add(name)
            self._changed = True

    def unmapped_kept(self, metric: str) -> bool:
        """Return whether metric ``metric``, a name without a mapping rule, is exposed."""
        return metric in self._unmapped_kept

    def kept(self, metric: str, series: Series) -> bool:
        """Return whether ``series`` is exposed as itself (admitted, or not subject to the cap)."""
        return not is_capped(metric, series) or series in self._kept.get(metric, ())

    def save(self) -> None:
        """Write the admitted label sets atomically if they changed."""
        if not self._changed:
            return
        staging = self.path.with_name(self.path.name + ".tmp")
        body = {
            "version": 1,
            "metrics": {m: [list(map(list, s)) for s in sets] for m, sets in self._order.items()},
            "unmapped": self._unmapped_order,
        }
        staging.write_text(json.dumps(body, sort_keys=True))
        os.replace(staging, self.path)
        self._changed = False
