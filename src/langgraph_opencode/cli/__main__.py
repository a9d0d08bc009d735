"""``python -m langgraph_opencode.cli``."""

import sys

from langgraph_opencode.cli import main

sys.exit(main())
