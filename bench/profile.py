"""``python -m bench.profile``: where A's time goes, from a py-spy recording of one child run.

It runs the A child (this checkout's package, or A0's) under ``py-spy record --idle --threads -f raw``
against servers started and warmed the same way as the benchmark, then sorts the samples of
the measured part (under ``bench/variant_a.py``) into categories by the innermost frame that
matches a rule (JSON parse, re-serialisation, gzip, HTTP read, upload, ...). Each thread is
counted on its own: with ``--idle`` a thread waiting on a socket counts, so the main thread's
share is wall time, and helper threads (boto3's upload threads) are listed apart.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
import shutil
import sys
from pathlib import Path

from bench.common import BENCH_DIR, WORK_DIR

# (category, regex on a frame "function (file:line)"); the innermost matching frame decides.
RULES: list[tuple[str, str]] = [
    ("upload (S3Hook.load_file / boto3 / moto round trips)", r"s3transfer|boto3/s3/|botocore|load_file \("),
    ("list/delete objects before/after (S3 API)", r"list_keys|delete_objects|_list_owned|_delete_stale"),
    ("gzip compression", r"gzip\.py|igzip|gzip_ng|_compress|GzipFile|compressobj|zlib"),
    ("JSON re-serialisation (orjson.dumps in the writer loop)", r"_write_all \(|dumps"),
    ("writer: line buffer, file write", r"add \(|_flush \(|finish \("),
    (
        "JSON parse (orjson.loads / msgspec of each page)",
        r"_decode \(|loads|_parse(_raw_page)? \(|decode_page",
    ),
    (
        "HTTP read (requests/urllib3 socket reads)",
        r"requests/|urllib3/|http/client\.py|socket\.py|ssl\.py|_send_once|iter_content|sendall|recv",
    ),
    ("dedup + window filter (_deliver, _TimeCursor)", r"_deliver(_raw)? \(|accept \(|_event_id|_created_at"),
    ("retry wrapper (tenacity)", r"tenacity/"),
    ("prefetch hand-off (queue)", r"prefetch"),
    ("logging", r"logging/|structlog"),
]


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def summarize(raw: Path, marker: str = "variant_a.py") -> str:
    """Categorise the samples of one py-spy raw (collapsed) file; return a Markdown table."""
    by_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    inclusive: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    compiled = [(name, re.compile(rule)) for name, rule in RULES]
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = _frames(stack)
        # With --threads the first frame names the thread; what matters is whether the stack runs
        # the measured part (the main thread) or a helper thread (upload, compression, prefetch).
        in_measured = any(marker in frame for frame in frames)
        helper = not in_measured
        if helper and not any("threading.py" in f for f in frames):
            continue  # startup/imports/teardown of the main thread: outside the measured part
        key = "helper threads" if helper else "main thread"
        totals[key] += count
        category = "other Python"
        for frame in reversed(frames):
            hit = next((name for name, pattern in compiled if pattern.search(frame)), None)
            if hit:
                category = hit
                break
        by_thread[key][category] += count
        if not helper:
            seen = set()
            for frame in frames:
                name = re.sub(r" \(.*?:\d+\)", lambda m: m.group(0).split(":")[0] + ")", frame)
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += count
    out = []
    for key in ("main thread", "helper threads"):
        if not totals[key]:
            continue
        out.append(f"\n**{key}** ({totals[key]} samples)\n\n| where | share |\n| --- | ---: |")
        for category, count in by_thread[key].most_common():
            out.append(f"| {category} | {100.0 * count / totals[key]:.1f}% |")
    out.append("\nTop inclusive frames of the main thread:\n\n| frame | share |\n| --- | ---: |")
    main_total = max(totals["main thread"], 1)
    for name, count in inclusive.most_common(45):
        if marker in name or "runpy" in name or "child.py" in name:
            continue
        out.append(f"| `{name}` | {100.0 * count / main_total:.1f}% |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--target",
        action="append",
        choices=("A", "A0"),
        default=None,
        help="what to profile, repeatable: 'A' (this checkout), 'A0' (the package before the speed-up); "
        "default: A0 and A",
    )
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "profile.md")
    parser.add_argument("--summarize", type=Path, help="only summarise an existing raw file")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize))
        return 0
    from bench.common import api_params, window_for
    from bench.main import _child_env, _load, run_child
    from bench.reference import BEFORE_SPEEDUP, tree_at
    from bench.servers import running_servers
    from bench.variant_c import raw_pull

    targets = args.target or ["A0", "A"]
    before, before_hash = tree_at(BEFORE_SPEEDUP)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    sections = []
    with running_servers(args.size, WORK_DIR / "logs") as servers:
        raw_pull(servers.simulator_url, api_params(*window_for(args.size)))
        env = _child_env(servers.simulator_url, servers.moto_url)
        for target in targets:
            tree = None if target == "A" else before
            if target != "A" and tree is None:
                raise SystemExit(f"cannot extract the package at {BEFORE_SPEEDUP}: {before_hash}")
            name = target
            raw = WORK_DIR / f"profile-{name}-{args.size}.txt"
            wrap = [
                py_spy,
                "record",
                "--idle",
                "--threads",
                "-r",
                str(args.rate),
                "-f",
                "raw",
                "-o",
                str(raw),
            ]
            result = run_child(
                "A",
                args.size,
                python=sys.executable,
                env=env,
                sim_url=servers.simulator_url,
                moto_url=servers.moto_url,
                label=f"{name}-profile",
                tree=str(tree) if tree else None,
                wrap=[*wrap, "--"],
            )
            sections.append(
                f"## {name}, {result.events:,} events: {result.wall_seconds:.2f}s under py-spy "
                f"(CPU {result.cpu_seconds:.1f}s)\n{summarize(raw)}\n"
            )
            print(sections[-1], flush=True)
    given = argv if argv is not None else sys.argv[1:]
    shown_args = (" " + " ".join(given)) if given else ""
    header = (
        f"# Where A's time goes\n\n`python -m bench.profile{shown_args}`"
        f", {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average {_load()}. "
        "py-spy `record --idle --threads` samples every thread, waiting or not. Each sample goes to "
        "the category of its innermost frame that matches a rule (bench/profile.py): C code has no "
        "frame, so `orjson.loads` (and any garbage collection it triggers) counts as the "
        "`_decode` that calls it, and compression as the writer call that feeds it.\n"
    )
    args.output.write_text(header + "\n" + "\n".join(sections))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
