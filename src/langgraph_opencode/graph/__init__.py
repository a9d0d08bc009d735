"""The orchestration graph (planner, dispatcher, monitor, reviewer)."""
