"""A user's environment whose own OpenCode config names the scripted model.

The default path (``orchestrate()`` or the CLI without ``--server``) starts an
embedded ``opencode serve`` that reads the user's OpenCode config and keeps
its sessions in the user's OpenCode data. To test that path offline, give the
process a home of its own::

    env = user_environment(tmp_path / "home", model)
    subprocess.run(["langgraph-opencode", "run", "..."], env=env)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph_opencode.testing._server import ScriptedModelServer
from langgraph_opencode.tools.opencode.config import deep_merge
from langgraph_opencode.tools.opencode.server import provide_plugin_package

__all__ = ["user_environment"]

_XDG = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
    "XDG_STATE_HOME": ".local/state",
}
_DROPPED = (
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_DIR",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_DB",
    "OPENCODE_AUTH_CONTENT",
    "OPENCODE_SERVER_PASSWORD",
    "OPENCODE_SERVER_USERNAME",
    "LANGGRAPH_OPENCODE_CHECKPOINTS",
)


def user_environment(
    home: Path,
    model: ScriptedModelServer,
    *,
    config: Mapping[str, Any] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment with ``home`` as the user's home and the scripted model in their config.

    Args:
        home: The user's home directory (made if missing); their OpenCode
            config goes to ``~/.config/opencode/opencode.json`` (next to the
            ``@opencode-ai/plugin`` package OpenCode installs there, as far as
            OpenCode checks for it) and their OpenCode data to
            ``~/.local/share/opencode``.
        model: The scripted model, as the config's provider and default model.
        config: More of the user's OpenCode config (e.g. ``{"permission":
            {"bash": "ask"}}``), merged over the provider.
        base: The environment to start from (default ``os.environ``), less
            any variable that would point OpenCode elsewhere.
    """
    env = {k: v for k, v in (base if base is not None else os.environ).items() if k not in _DROPPED}
    env["HOME"] = str(home)
    for var, relative in _XDG.items():
        path = home / relative
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    user_config = deep_merge(model.provider_config(), config or {})
    config_dir = home / _XDG["XDG_CONFIG_HOME"] / "opencode"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "opencode.json").write_text(json.dumps(user_config, indent=2))
    # A user who has run OpenCode online has its plugin package there already;
    # without it, each directory's first tool call would wait for an npm install.
    provide_plugin_package(config_dir)
    env["OPENCODE_DISABLE_AUTOUPDATE"] = "1"
    return env
