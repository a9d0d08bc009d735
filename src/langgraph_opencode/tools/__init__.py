"""Tools the graph's nodes use.

The OpenCode client and server (``tools.opencode``), git runs and worktrees
(``tools.git``), and the acceptance-check runner (``tools.checks``).
"""
