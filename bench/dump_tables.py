"""What counting the tables in a dump costs the backup (MetaDB.dumped_tables: one grep over the file, on the backup
host), against what the backup already does with each file (Host.file_facts: its size and SHA-256). No sandbox
needed: a file laid out as mysqldump writes one (a CREATE TABLE per table, then its extended INSERT lines of 100
rows) of each size, read from the page cache as the backup reads its dumps right after writing them. Median of 3.

    python bench/dump_tables.py                        # writes bench/results/dump_tables.json
    python bench/dump_tables.py --sizes-mb 100 400 1500 --tables 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from omsup.adapters.hosts import Host  # noqa: E402
from omsup.adapters.metadb import MetaDB  # noqa: E402


def write_dump(path: Path, mb: int, tables: int) -> None:
    row = ",".join(f"({j},'{'x' * 80}',NULL)" for j in range(100))
    per_table = mb * 1_000_000 // tables
    with path.open("w") as f:
        f.write("-- MariaDB dump 10.19\n")
        for t in range(tables):
            f.write(f"DROP TABLE IF EXISTS `t{t}`;\nCREATE TABLE `t{t}` (\n  `id` bigint NOT NULL\n);\n")
            line = f"INSERT INTO `t{t}` VALUES {row};\n"
            for _ in range(max(1, per_table // len(line))):
                f.write(line)
        f.write("-- Dump completed on 2026-12-07 10:00:00\n")


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 400, 1500])
    ap.add_argument("--tables", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    host = Host("local://", "bench")
    counter = MetaDB.__new__(MetaDB)  # dumped_tables reads the file only: no MetaDB connection
    results = []
    with tempfile.TemporaryDirectory(prefix="omsup-bench-dump-") as tmp:
        for mb in a.sizes_mb:
            path = Path(tmp) / f"d{mb}.sql"
            write_dump(path, mb, a.tables)
            found = counter.dumped_tables(host, str(path))
            assert len(found) == a.tables, (len(found), a.tables)
            host.file_facts(str(path))  # the page cache warm, as right after the dump
            count = timed(lambda p=str(path): counter.dumped_tables(host, p), a.repeat)
            facts = timed(lambda p=str(path): host.file_facts(p), a.repeat)
            r = {
                "mb": round(path.stat().st_size / 1e6, 1),
                "tables": a.tables,
                "count_tables_s": round(statistics.median(count), 3),
                "size_and_sha256_s": round(statistics.median(facts), 3),
                "runs": {"count_tables_s": count, "size_and_sha256_s": facts},
            }
            results.append(r)
            print(
                f"{r['mb']:8.1f} MB  count tables {r['count_tables_s']:.3f} s   size+SHA-256 {r['size_and_sha256_s']:.3f} s"
            )
            path.unlink()
    out = ROOT / "bench" / "results" / "dump_tables.json"
    out.write_text(json.dumps({"results": results}, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
