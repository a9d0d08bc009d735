"""Prompt templates, kept as Markdown files beside this module."""
