"""The run's core, below the nodes: its state, its settings, and its live connections.

Imports run one way: ``tools`` and ``plan`` at the bottom, then ``core``, then
``nodes``, then ``graph`` (the wiring) at the top.
"""
