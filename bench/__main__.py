"""Run every benchmark and print its table."""

from __future__ import annotations

import asyncio

from bench.foundation import main

if __name__ == "__main__":
    asyncio.run(main())
