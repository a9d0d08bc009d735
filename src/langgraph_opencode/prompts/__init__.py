"""Prompt templates, kept as Markdown files beside this module.

Each template is ``<name>.md`` in this package and is filled in with
[`render`][]. Placeholders use [`string.Template`][string.Template] syntax:
``$name`` or ``${name}``; a literal dollar sign is written ``$$``. This syntax
was chosen over ``str.format`` because prompts are full of braces (JSON, code)
and rarely need a dollar sign.

Rendering is strict, like a function call: every placeholder of the template
must be given, nothing else may be, and every value must be a string (format
lists with [`bullet_list`][] and code with [`code_block`][]). Values are
inserted as they are: a ``$`` or ``{`` inside a value is never interpreted.

A template may start with an HTML comment (``<!-- ... -->``) that documents
it for maintainers; the comment is not part of the rendered prompt. The
rendered prompt of every template is pinned by a golden file in
``tests/golden/``.

Templates:

* ``planner``, ``planner_retry``: objective to plan, and the retry after an
  invalid plan;
* ``worker``, ``rework``, ``rework_checks``, ``conflict``: what a worker session is
  asked;
* ``reviewer``: the review of one task's change;
* ``planner_agent``, ``reviewer_agent``: system prompts of the read-only agents
  (no placeholders).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from string import Template

__all__ = ["bullet_list", "code_block", "placeholders", "render", "template_names"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LEADING_COMMENT = re.compile(r"\A\s*<!--.*?-->[ \t]*\n+", re.DOTALL)


def template_names() -> list[str]:
    """Return the names of all templates, sorted."""
    return sorted(_all_templates())


def placeholders(name: str) -> frozenset[str]:
    """Return the placeholder names of a template.

    Raises:
        ValueError: There is no template of this name.
    """
    return frozenset(_template(name).get_identifiers())


def render(name: str, /, **values: str) -> str:
    """Fill in a template.

    Args:
        name: The template's name: its file name without ``.md``.
        **values: One string per placeholder of the template.

    Returns:
        The prompt.

    Raises:
        ValueError: There is no template of this name.
        TypeError: A placeholder has no value, a value has no placeholder, or
            a value is not a string.
    """
    template = _template(name)
    expected = set(template.get_identifiers())
    missing = sorted(expected - values.keys())
    extra = sorted(values.keys() - expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing values for {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected values for {', '.join(extra)}")
        raise TypeError(
            f"prompt template {name!r}: {'; '.join(parts)} "
            f"(placeholders: {', '.join(sorted(expected)) or 'none'})"
        )
    wrong = sorted(key for key, value in values.items() if not isinstance(value, str))
    if wrong:
        raise TypeError(f"prompt template {name!r}: values must be strings: {', '.join(wrong)}")
    return template.substitute(values)


def bullet_list(items: Iterable[str], *, empty: str = "(none)") -> str:
    """Format items as a Markdown bullet list, one per line.

    Args:
        items: The items; an item spanning several lines is indented under its bullet.
        empty: What to write when there are no items.

    Returns:
        The list, without a trailing newline.
    """
    lines = ["- " + item.strip().replace("\n", "\n  ") for item in items]
    return "\n".join(lines) if lines else empty


def code_block(text: str, language: str = "") -> str:
    """Wrap text in a fenced Markdown code block that its own backticks cannot close.

    Args:
        text: The code, diff or output.
        language: The info string (``"diff"``, ``"json"``...), if any.

    Returns:
        The block, without a trailing newline.
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _template(name: str) -> Template:
    templates = _all_templates()
    if name not in templates:
        raise ValueError(
            f"no prompt template named {name!r}; templates: {', '.join(sorted(templates))}"
        )
    return templates[name]


@functools.cache
def _all_templates() -> dict[str, Template]:
    templates: dict[str, Template] = {}
    for entry in resources.files(__name__).iterdir():
        stem, dot, suffix = entry.name.rpartition(".")
        if not (dot and suffix == "md" and _NAME.match(stem)):
            continue
        template = Template(_LEADING_COMMENT.sub("", entry.read_text(encoding="utf-8"), count=1))
        if not template.is_valid():
            # A packaging bug, not a caller's mistake: say where the stray `$` is.
            raise ValueError(f"prompt template {stem!r}: {_stray_dollar(template)}")
        templates[stem] = template
    return templates


def _stray_dollar(template: Template) -> str:
    for match in template.pattern.finditer(template.template):
        if match.group("invalid") is not None:
            line = template.template.count("\n", 0, match.start()) + 1
            return f"line {line} has a `$` that starts no placeholder (write `$$` for a dollar)"
    return "invalid placeholder"
