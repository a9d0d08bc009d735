"""Run the benchmarks and print a markdown table per benchmark.

``python -m bench`` (``make bench``) runs them all (27 minutes on the two
cores under heavy load, far less on a quiet machine); ``--only`` picks some,
``--quick`` is a smoke run with small sizes (3 to 4 minutes)::

    python -m bench --only scaling --n 1,8,32 --parallel 4
    python -m bench --quick
"""

from __future__ import annotations

import argparse
import asyncio

from bench import foundation, graph_checkpoints, orchestration, pipeline

BENCHMARKS = ("foundation", "checkpoints", "scaling", "pipeline")


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return names


async def _run(args: argparse.Namespace) -> None:
    verdicts: list[str] = []
    if "foundation" in args.only:
        await foundation.main(starts=args.starts, prompts=args.prompts)
        print()
    if "checkpoints" in args.only:
        await graph_checkpoints.main()
        print()
    if "scaling" in args.only:
        verdicts += await orchestration.main(args.n, args.parallel)
    if "pipeline" in args.only:
        verdicts += await pipeline.main(args.pipeline_n, runs=1 if args.quick else 3)
        print()
    if verdicts:
        print("Targets:")
        for verdict in verdicts:
            print(f"- {verdict}")


def main() -> None:
    """Parse the options and run the chosen benchmarks."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=_names,
        default=list(BENCHMARKS),
        help=f"comma-separated benchmarks to run, of: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--n", type=_ints, default=None, help="task counts (default 1,8,32,64)")
    parser.add_argument("--parallel", type=int, default=4, help="concurrency limit (default 4)")
    parser.add_argument("--pipeline-n", type=int, default=None, help="pipeline tasks (default 8)")
    parser.add_argument("--starts", type=int, default=None, help="server starts (default 5)")
    parser.add_argument("--prompts", type=int, default=None, help="round trips (default 20)")
    args = parser.parse_args()
    quick = args.quick
    args.n = args.n or ([1, 4] if quick else [1, 8, 32, 64])
    args.pipeline_n = args.pipeline_n or (2 if quick else 8)
    args.starts = args.starts or (1 if quick else 5)
    args.prompts = args.prompts or (3 if quick else 20)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
