"""The Prometheus exposition of every process's metrics (multiprocess mode) or of this process's.

In multiprocess mode every process writes its own files (``counter_<pid>.db``, ...). Airflow 3
runs each task in a short-lived process, so a long-running instance would accumulate one set of
files per task ever run and every scrape would read them all. Scrapes therefore *compact*: the
counter and histogram files of dead processes are folded into one archive file per type
(``counter_archive.db``, ``histogram_archive.db``) and removed, so the directory holds the live
processes plus two archives, and totals never go backwards.

The series cap is enforced here too, on the merged view, because each process only caps its own
series (``_cap`` says which label sets are kept). Folded label sets are rewritten to their
``__overflow__`` key before compaction, so the archives stay bounded as well, and are counted in
``mlwf_stats_bridge_folded_series_total{metric}``: live processes' at each scrape, dead ones'
in the counter archive, so the count never goes backwards.

Metrics of StatsD names without a mapping rule are bounded the same way: at most
``max_unmapped`` such metric names are admitted across all processes (``_cap``; names admitted
earlier or held in an archive stay admitted past it). Entries of the others in per-process files
are dropped from the scrape, so they are neither exposed nor folded into the archives, and
counted in ``mlwf_stats_bridge_refused_unmapped_metrics`` (a snapshot of the files present).
Entries of an archive are never dropped.

A scrape (cap, compaction, reading) holds a lock file in the directory exclusively, so no scrape
ever sees a dead process's values twice or not at all, and concurrent scrapes agree on the
admitted label sets. The archive is replaced atomically; the one window left is a crash between
that replacement and the removal of the folded files, which would count those files twice once
(documented).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from mlwf_stats_bridge._cap import (
    BOOKKEEPING_PREFIX,
    Series,
    SeriesCap,
    overflow_labels,
    series_of,
    unmapped_metrics,
)
from mlwf_stats_bridge._client import (
    _CLIENTS,
    DEFAULT_MAX_SERIES,
    DEFAULT_MAX_UNMAPPED,
    MAX_SERIES_ENV,
    MAX_UNMAPPED_ENV,
    is_unmapped_help,
    limit_setting,
    multiprocess_dir,
)

_PID_FILE = re.compile(r"_(\d+)\.db$")
_COMPACTED_TYPES = ("counter", "histogram")
LOCK_FILE = ".mlwf-stats-bridge.lock"
#: Label sets folded into ``__overflow__`` by the cap across processes, per metric.
FOLDED_SERIES = "mlwf_stats_bridge_folded_series"
FOLDED_HELP = (
    "Label sets folded into the __overflow__ series at exposition because the metric reached "
    "its series cap across all processes, counted once per process that recorded them"
)
#: Metric names without a mapping rule held back by the cap across processes, at this scrape.
REFUSED_UNMAPPED = "mlwf_stats_bridge_refused_unmapped_metrics"
REFUSED_UNMAPPED_HELP = (
    "Distinct metric names of StatsD names without a mapping rule that the exposition holds back "
    f"because {MAX_UNMAPPED_ENV} such names are admitted across all processes; a snapshot of the "
    "files present at this scrape"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(directory: str | os.PathLike[str], *, wait: bool = True) -> Iterator[bool]:
    """Hold the directory's lock exclusively; yield False if ``wait`` is off and it is busy.

    ``filelock`` (``flock`` on Unix: released by the kernel when a scraper dies). No soft-lock
    fallback: a lock file left by a killed scraper would block every later scrape.
    """
    lock = FileLock(Path(directory) / LOCK_FILE, thread_local=False, fallback_to_soft=False)
    try:
        lock.acquire(blocking=wait)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


class _File:
    """One ``*.db`` file of the directory: its type, gauge mode, writer pid and entries."""

    def __init__(self, path: Path) -> None:
        self.path = path
        parts = path.name[: -len(".db")].split("_")
        self.typ = parts[0]
        self.mode = parts[1] if self.typ == "gauge" and len(parts) > 2 else ""
        found = _PID_FILE.search(path.name)
        self.pid: int | None = int(found.group(1)) if found else None
        self.entries: list[tuple[str, float, float]] = []

    @property
    def dead(self) -> bool:
        return self.pid is not None and self.pid != os.getpid() and not _alive(self.pid)

    @property
    def archive(self) -> bool:
        return self.pid is None and self.typ in _COMPACTED_TYPES


_KeyParts = tuple[str, str, dict[str, str], str]


class _Scrape:
    """One pass over a multiprocess directory with the cap applied; the caller holds the lock."""

    def __init__(self, directory: Path, max_series: int, max_unmapped: int) -> None:
        self.directory = directory
        self.cap = SeriesCap(directory, max_series, max_unmapped)
        #: Metric names without a mapping rule whose entries this scrape dropped.
        self.refused_unmapped: set[str] = set()
        self._parsed: dict[str, _KeyParts] = {}
        #: Per file: how many distinct label sets of each metric the cap folded.
        self.folded: dict[_File, dict[str, int]] = {}
        self.files: list[_File] = []
        for path in sorted(directory.glob("*.db")):
            file = _File(path)
            try:
                values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
            except FileNotFoundError:  # a live gauge file removed since the glob
                continue
            file.entries = [(key, value, timestamp) for key, value, timestamp, _pos in values]
            self.files.append(file)

    def parse(self, key: str) -> _KeyParts:
        parsed = self._parsed.get(key)
        if parsed is None:
            metric, name, labels, help_text = json.loads(key)
            parsed = self._parsed[key] = (metric, name, labels, help_text)
        return parsed

    def apply_cap(self) -> None:
        """Admit new label sets and unmapped names, drop the entries of refused unmapped names,
        then rewrite every folded entry to its ``__overflow__`` key.

        Records per file how many distinct label sets of each metric it had folded.
        """
        self.cap.load()
        helps: dict[str, set[str]] = {}
        seen: dict[str, set[Series]] = {}
        archived: set[str] = set()
        for file in self.files:
            for key, _value, _timestamp in file.entries:
                metric, _name, labels, help_text = self.parse(key)
                helps.setdefault(metric, set()).add(help_text)
                seen.setdefault(metric, set()).add(series_of(file.typ, labels))
                if file.archive and is_unmapped_help(help_text):
                    archived.add(metric)
        unmapped = unmapped_metrics(helps)
        # Names whose entries without a rule are exposed anyway stay admitted past the budget, so
        # nothing exposed is ever refused later: names in an archive (it only holds exposed
        # names, whatever the budget or the state file says now), and names exempt because a
        # rule also produces them (that process may die and take the exemption with it).
        exempt = {
            metric
            for metric, texts in helps.items()
            if metric not in unmapped
            and not metric.startswith(BOOKKEEPING_PREFIX)
            and any(map(is_unmapped_help, texts))
        }
        self.cap.admit_unmapped(unmapped, exposed=archived | exempt)
        self.refused_unmapped = {m for m in unmapped if not self.cap.unmapped_kept(m)}
        for metric in self.refused_unmapped:
            del seen[metric]  # a refused name admits no label sets either
        self.cap.admit(seen)
        self.cap.save()
        for file in self.files:
            folded: dict[str, set[Series]] = {}
            rewritten = []
            for key, value, timestamp in file.entries:
                metric, name, labels, help_text = self.parse(key)
                if metric in self.refused_unmapped and not file.archive:
                    continue  # neither exposed nor archived (an archive's names are admitted)
                series = series_of(file.typ, labels)
                if not self.cap.kept(metric, series):
                    folded.setdefault(metric, set()).add(series)
                    key = json.dumps(
                        [metric, name, overflow_labels(labels), help_text], sort_keys=True
                    )
                rewritten.append((key, value, timestamp))
            file.entries = rewritten
            self.folded[file] = {metric: len(sets) for metric, sets in folded.items()}

    def compact(self) -> int:
        """Fold dead processes' counters and histograms (and their fold counts) into the archives.

        Returns how many files were folded. Dead processes' live-mode gauge files are removed;
        the label sets they had folded are counted in the counter archive first, so
        ``mlwf_stats_bridge_folded_series_total`` never goes backwards.
        """
        dead = [f for f in self.files if f.dead]
        folded_counts: dict[str, int] = {}
        for file in dead:
            for metric, count in self.folded[file].items():
                folded_counts[metric] = folded_counts.get(metric, 0) + count
        folded_files = 0
        for kind in _COMPACTED_TYPES:
            sources = [f for f in dead if f.typ == kind]
            extra = _folded_entries(folded_counts) if kind == "counter" else []
            if not sources and not extra:
                continue
            archive_path = self.directory / f"{kind}_archive.db"
            archive = next((f for f in self.files if f.archive and f.typ == kind), None)
            if archive is None:
                archive = _File(archive_path)
                self.files.append(archive)
                self.folded[archive] = {}
            totals: dict[str, float] = {}
            for key, value, _timestamp in [*archive.entries, *extra] + [
                e for f in sources for e in f.entries
            ]:
                totals[key] = totals.get(key, 0.0) + value
            staging = self.directory / f".{kind}_archive.db.tmp"  # not *.db: never read as metrics
            staging.unlink(missing_ok=True)
            merged = MmapedDict(str(staging))  # type: ignore[no-untyped-call]
            try:
                for key, value in totals.items():
                    merged.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
            finally:
                merged.close()  # type: ignore[no-untyped-call]
            os.replace(staging, archive_path)
            archive.entries = [(key, value, 0.0) for key, value in totals.items()]
            for file in sources:
                file.path.unlink()
                self.files.remove(file)
            folded_files += len(sources)
        for file in dead:
            if file.typ == "gauge" and file.mode.startswith("live"):
                file.path.unlink(missing_ok=True)
                self.files.remove(file)
        return folded_files

    def metrics(self) -> list[Metric]:
        """Return the merged metrics, as prometheus_client's MultiProcessCollector would."""
        live_folded: dict[str, int] = {}
        for file in self.files:
            for name, count in self.folded.get(file, {}).items():
                live_folded[name] = live_folded.get(name, 0) + count
        sources = [(f.typ, f.mode, f.pid, f.entries) for f in self.files]
        sources.append(("counter", "", None, _folded_entries(live_folded)))
        metrics: dict[str, Metric] = {}
        for typ, mode, pid, entries in sources:
            for key, value, timestamp in entries:
                metric_name, name, labels, help_text = self.parse(key)
                metric = metrics.get(metric_name)
                if metric is None:
                    metric = metrics[metric_name] = Metric(metric_name, help_text, typ)
                if typ == "gauge":
                    metric._multiprocess_mode = mode  # type: ignore[attr-defined]
                    label_items = (*sorted(labels.items()), ("pid", str(pid)))
                    metric.add_sample(name, label_items, value, timestamp)  # type: ignore[arg-type]
                else:  # duplicates (e.g. folded series) are summed by _accumulate_metrics
                    metric.add_sample(name, tuple(sorted(labels.items())), value)  # type: ignore[arg-type]
        # The merge itself is prometheus_client's, so the exposition matches its multiprocess mode.
        merged = list(
            MultiProcessCollector._accumulate_metrics(metrics, True)  # type: ignore[no-untyped-call]
        )
        merged.append(
            GaugeMetricFamily(
                REFUSED_UNMAPPED, REFUSED_UNMAPPED_HELP, value=len(self.refused_unmapped)
            )
        )
        return merged


def _folded_entries(counts: dict[str, int]) -> list[tuple[str, float, float]]:
    return [
        (
            json.dumps(
                [FOLDED_SERIES, FOLDED_SERIES + "_total", {"metric": metric}, FOLDED_HELP],
                sort_keys=True,
            ),
            float(count),
            0.0,
        )
        for metric, count in sorted(counts.items())
        if count
    ]


class _Collected:
    """A collector that yields already merged metrics."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


def _limits(max_series: int | None, max_unmapped: int | None) -> tuple[int, int]:
    return (
        limit_setting("max_series", max_series, MAX_SERIES_ENV, DEFAULT_MAX_SERIES),
        limit_setting("max_unmapped", max_unmapped, MAX_UNMAPPED_ENV, DEFAULT_MAX_UNMAPPED),
    )


def compact_dead_processes(
    path: str | os.PathLike[str],
    *,
    max_series: int | None = None,
    max_unmapped: int | None = None,
) -> int:
    """Fold dead processes' counter and histogram files into the archives; return how many files.

    The series cap (``max_series``, default ``MLWF_STATS_BRIDGE_MAX_SERIES``) and the budget of
    names without a mapping rule (``max_unmapped``, default ``MLWF_STATS_BRIDGE_MAX_UNMAPPED``)
    apply to what is folded. Skips (returns 0) when another process is scraping the same
    directory right now.
    """
    directory = Path(path)
    cap, unmapped_cap = _limits(max_series, max_unmapped)
    with _locked(directory, wait=False) as acquired:
        if not acquired:
            return 0
        scrape = _Scrape(directory, cap, unmapped_cap)
        scrape.apply_cap()
        return scrape.compact()


def remove_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """Drop the live-mode gauge files of processes that no longer exist; return their pids.

    Counters and histograms of dead processes are folded into the archives instead
    (:func:`compact_dead_processes`): their counts must not go backwards.
    """
    dead = sorted(
        {
            int(found.group(1))
            for file in Path(path).glob("gauge_live*_*.db")
            if (found := _PID_FILE.search(file.name)) and not _alive(int(found.group(1)))
        }
    )
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return dead


def exposition(
    path: str | os.PathLike[str] | None = None,
    *,
    max_series: int | None = None,
    max_unmapped: int | None = None,
) -> bytes:
    """Return the text exposition: all processes' files when in multiprocess mode (or ``path``),
    else the registries of this process's clients.

    In multiprocess mode each metric exposes at most ``max_series`` label sets (default
    ``MLWF_STATS_BRIDGE_MAX_SERIES``), and at most ``max_unmapped`` metric names of StatsD names
    without a mapping rule are exposed (default ``MLWF_STATS_BRIDGE_MAX_UNMAPPED``), whatever the
    number of processes; see ``_cap``.
    """
    directory = str(path) if path is not None else multiprocess_dir()
    if directory:
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"metrics directory {directory} does not exist")
        cap, unmapped_cap = _limits(max_series, max_unmapped)
        # One scrape at a time: the cap's admissions and compaction must see a consistent
        # directory, and a scrape takes milliseconds.
        with _locked(directory):
            scrape = _Scrape(Path(directory), cap, unmapped_cap)
            scrape.apply_cap()
            scrape.compact()
            registry = CollectorRegistry(auto_describe=True)
            registry.register(_Collected(scrape.metrics()))
            return generate_latest(registry)
    return b"".join(generate_latest(client.registry) for client in list(_CLIENTS))
