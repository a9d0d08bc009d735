"""Tools the graph's nodes use: the OpenCode client and, later, git and checks."""
