"""Search quality: recall@10 and nDCG@10 of keyword, vector and hybrid search over the labelled queries.

The queries (`tests/search/queries.json`) are what a person would ask of their own mail, calendar, chat,
meetings and tasks, in their own words, each with the documents that answer it (grade 2) or bear on it
(grade 1), named by keys that survive a re-import:

- `{"source", "external_id"}`: an imported item (`items.source`, `items.external_id`);
- `{"source", "series"}`: every occurrence of a recurring event (external ids `UID#start`), which counts
  as one document: its first occurrence in a ranking is the hit, later ones are duplicates (gain 0);
- `{"task_external"}`: a Taskwarrior task by its uuid (task id "tw_" + sha256("taskwarrior\\0" + uuid)).

Metrics, per query, averaged over the queries (no filters: each query searches everything):
- recall@10: the share of the query's relevant documents (grade >= 1) among the first 10 results;
- nDCG@10: DCG = sum over the first 10 results of grade / log2(rank + 1) (linear gain, as trec_eval's
  ndcg_cut), divided by the DCG of the ideal ordering of the query's grades.

The vector modes need `aurora.app.search.vectors` (`VectorIndex`, `vector_ranker`), `embed_worker`
(`EmbedWorker`) and the packaged embedding model; where any is missing, only keyword search is reported.
Run: `.venv/bin/python -c "from tests.bench.common import isolated_root; from tests.bench import
search_quality; print(search_quality.run(isolated_root()))"`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora.app.search.keyword import Hit
from aurora.app.store import Store
from aurora.app.workspace import Workspace
from tests.bench.common import Row

QUERIES = Path(__file__).resolve().parents[1] / "search" / "queries.json"
SHARED = Path(os.environ.get("AURORA_SHARED", Path(__file__).resolve().parents[3] / "shared"))
K = 10
MODES = ("keyword", "vector", "hybrid", "rrf")
"""hybrid: the default score fusion; rrf: the same two halves fused by reciprocal rank, for comparison."""

Ranker = Callable[[str], list[Hit]]
"""A mode: the query text in, the best K hits out, best first."""


# The labelled set ---------------------------------------------------------------------------------------


def load(path: Path = QUERIES) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def task_id(uuid: str) -> str:
    """The id `Importer` gives the Taskwarrior task with this uuid (`pipeline._write_task`)."""
    return "tw_" + hashlib.sha256(f"taskwarrior\0{uuid}".encode()).hexdigest()[:24]


def doc_key(label: dict[str, Any]) -> str:
    """A relevance label's document, as text."""
    if "task_external" in label:
        return f"task:{label['task_external']}"
    if "series" in label:
        return f"{label['source']}:{label['series']}#*"
    return f"{label['source']}:{label['external_id']}"


def grades(query: dict[str, Any]) -> dict[str, int]:
    return {doc_key(r): int(r["grade"]) for r in query["relevant"]}


def import_data(ws: Workspace, data: dict[str, Any], root: Path | None = None) -> None:
    """Import the set's paths (relative to the real-data folder) and index every entity for keywords."""
    from aurora.app.ingest.pipeline import Importer

    base = root if root is not None else SHARED / "data" / "real"
    Importer(ws).run([base / p for p in data["imports"]])
    ws.search.drain_all()


class Judge:
    """Turns search hits into the labels' document keys (items by source and external id, recurring
    series as one document, tasks by uuid), and says which labelled documents the workspace lacks."""

    def __init__(self, store: Store, data: dict[str, Any]) -> None:
        labels = [r for q in data["queries"] for r in q["relevant"]]
        self._series = {(r["source"], r["series"]) for r in labels if "series" in r}
        self._docs: dict[str, str] = {}
        for entity_id, source, external_id in store.query("SELECT id, source, external_id FROM items"):
            self._docs[f"item:{entity_id}"] = self._item_key(str(source), str(external_id))
        uuids = {r["task_external"] for r in labels if "task_external" in r}
        known = {str(r[0]) for r in store.query("SELECT id FROM tasks")}
        for uuid in uuids:
            if task_id(uuid) in known:
                self._docs[f"task:{task_id(uuid)}"] = f"task:{uuid}"
        self.present = set(self._docs.values())

    def _item_key(self, source: str, external_id: str) -> str:
        uid, sep, _ = external_id.rpartition("#")
        if sep and (source, uid) in self._series:
            return f"{source}:{uid}#*"
        return f"{source}:{external_id}"

    def doc(self, hit_key: str) -> str:
        """The document of a hit (`Hit.key`); an unlabelled entity stands for itself."""
        return self._docs.get(hit_key, hit_key)

    def missing(self, data: dict[str, Any]) -> list[str]:
        return [k for q in data["queries"] for k in grades(q) if k not in self.present]


# Metrics ------------------------------------------------------------------------------------------------


def gains(ranked: Sequence[str], relevant: dict[str, int], k: int = K) -> list[int]:
    """The grade of each of the first `k` results (0: not relevant, or a document already seen)."""
    seen: set[str] = set()
    out: list[int] = []
    for doc in ranked:
        if len(out) >= k:
            break
        out.append(0 if doc in seen else relevant.get(doc, 0))
        seen.add(doc)
    return out


def dcg(values: Sequence[int]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(values, start=1))


def ndcg(ranked: Sequence[str], relevant: dict[str, int], k: int = K) -> float:
    ideal = dcg(sorted(relevant.values(), reverse=True)[:k])
    return dcg(gains(ranked, relevant, k)) / ideal if ideal > 0 else 0.0


def recall(ranked: Sequence[str], relevant: dict[str, int], k: int = K) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def answered(ranked: Sequence[str], relevant: dict[str, int], k: int = K) -> bool:
    """Whether a grade-2 document is among the first `k`."""
    return any(relevant.get(d, 0) >= 2 for d in ranked[:k])


@dataclass
class Scores:
    recall: float
    ndcg: float
    answered: float
    n: int


def evaluate(judge: Judge, data: dict[str, Any], rank: Ranker) -> dict[str, Scores]:
    """Mean scores over all queries ("all") and per `kind_hint`."""
    per: dict[str, list[tuple[float, float, float]]] = {}
    for query in data["queries"]:
        relevant = grades(query)
        ranked = [judge.doc(h.key) for h in rank(query["text"])]
        row = (recall(ranked, relevant), ndcg(ranked, relevant), float(answered(ranked, relevant)))
        for group in ("all", query["kind_hint"]):
            per.setdefault(group, []).append(row)

    def mean(rows: list[tuple[float, float, float]], i: int) -> float:
        return sum(r[i] for r in rows) / len(rows)

    return {
        group: Scores(mean(rows, 0), mean(rows, 1), mean(rows, 2), len(rows)) for group, rows in per.items()
    }


def keyword_ranker(store: Store) -> Ranker:
    from aurora.app.search import hybrid

    return lambda text: hybrid.search(store, text, limit=K, fresh=False)


# The vector side, where it exists -----------------------------------------------------------------------


def vector_rankers(store: Store) -> tuple[Ranker, Ranker, Ranker] | str:
    """(vector only, hybrid, hybrid by RRF) once every chunk is embedded; or why they are not available."""
    try:
        from aurora.app.embed import Embedder
        from aurora.app.search import embed_worker, hybrid, vectors
        from aurora.app.search.keyword import Filters

        for module, names in ((vectors, ("VectorIndex", "vector_ranker")), (embed_worker, ("EmbedWorker",))):
            lacking = [n for n in names if not hasattr(module, n)]
            if lacking:
                return f"{module.__name__} has no {', '.join(lacking)}"
        embedder = Embedder()
        index = vectors.VectorIndex(store, embedder.name, embedder.dim)
        worker = embed_worker.EmbedWorker(store, embedder, index)
        start = time.perf_counter()
        done = 0
        while claimed := worker.run_once(64):
            done += claimed
        print(f"  embedded {done} chunks with {embedder.name} in {time.perf_counter() - start:.1f} s")
        ranker = vectors.vector_ranker(index, embedder)
    except Exception as error:  # an API still in the making: report keyword search alone
        return f"{type(error).__name__}: {error}"

    def vector_only(text: str) -> list[Hit]:
        return ranker(text, Filters(), K)

    def fused(text: str) -> list[Hit]:
        return hybrid.search(store, text, limit=K, vector_ranker=ranker, fresh=False)

    def fused_rrf(text: str) -> list[Hit]:
        return hybrid.search(store, text, limit=K, vector_ranker=ranker, fresh=False, fusion="rrf")

    return vector_only, fused, fused_rrf


# The benchmark ------------------------------------------------------------------------------------------


def _table(results: dict[str, dict[str, Scores]]) -> str:
    groups = ["all", *sorted({g for r in results.values() for g in r} - {"all"})]
    lines = [
        f"{'mode':<8} | {'queries':<10} | {'n':>3} | {'recall@10':>9} | {'nDCG@10':>7} | {'answered':>8}"
    ]
    lines.append("-" * len(lines[0]))
    for group in groups:
        for mode, result in results.items():
            s = result.get(group)
            if s is not None:
                cells = f"{s.n:>3} | {s.recall:>9.3f} | {s.ndcg:>7.3f} | {s.answered:>8.2f}"
                lines.append(f"{mode:<8} | {group:<10} | {cells}")
    return "\n".join(lines)


def run(root: Path, data_root: Path | None = None) -> list[Row]:
    """Import the labelled set's data into a fresh workspace under `root` and score each mode."""
    from tests.bench.common import settings_for

    data = load()
    ws = Workspace.open(settings_for(root / "quality.db"))
    try:
        start = time.perf_counter()
        import_data(ws, data, data_root)
        judge = Judge(ws.store, data)
        missing = judge.missing(data)
        if missing:
            raise RuntimeError(f"{len(missing)} labelled documents are not in the import, e.g. {missing[0]}")
        chunks = ws.store.query("SELECT count(*) FROM chunks")[0][0]
        took = time.perf_counter() - start
        print(
            f"search quality: {len(data['queries'])} queries; "
            f"imported and indexed {chunks} chunks in {took:.1f} s"
        )
        results = {"keyword": evaluate(judge, data, keyword_ranker(ws.store))}
        found = vector_rankers(ws.store)
        if isinstance(found, str):
            print(f"  vector search not available yet ({found}); keyword only")
        else:
            results["vector"] = evaluate(judge, data, found[0])
            results["hybrid"] = evaluate(judge, data, found[1])
            results["rrf"] = evaluate(judge, data, found[2])
    finally:
        ws.close()
    print(_table(results))
    rows: list[Row] = []
    for mode, result in results.items():
        s = result["all"]
        value = f"nDCG@10 {s.ndcg:.3f}, recall@10 {s.recall:.3f}"
        if mode == "hybrid":
            best = max(results["keyword"]["all"].ndcg, results["vector"]["all"].ndcg)
            met = s.ndcg > best
            rows.append(
                Row(
                    f"search quality: {mode}",
                    value,
                    f"best single mode nDCG@10 {best:.3f}",
                    f"{s.ndcg / best:.2f}x" if best else "-",
                    "> keyword and vector",
                    met,
                )
            )
        else:
            rows.append(Row(f"search quality: {mode}", value, "-", "-", "-", None))
    return rows
