"""Where the configuration is read: the working directory's files and the environment.

The flow itself (keys, parsing, precedence, messages) is ``harness/_core/config.py``; this
module only does the reading, for the commands and for the pytest plugin.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from harness._core.config import LOCAL_FILE, PYPROJECT, SETTINGS, Config, ConfigError, load_config

__all__ = ["apply_config", "read_config"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path.name}: cannot read: {e}") from None


def read_config(
    command: str, cwd: Path | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """The settings ``command`` sees in ``cwd`` (default: the working directory)."""
    directory = Path.cwd() if cwd is None else cwd
    local = _read(directory / LOCAL_FILE)
    pyproject = _read(directory / PYPROJECT) if local is None else None
    env = os.environ if environ is None else environ
    return load_config(command, local=local, pyproject=pyproject, env=env)


def apply_config(ns: argparse.Namespace, config: Config) -> None:
    """Fill every flag of the command that the command line did not give (None) from the
    configuration: flags win over the environment, which wins over the file."""
    for setting in SETTINGS.values():
        if config.command in setting.commands and getattr(ns, setting.dest, None) is None:
            setattr(ns, setting.dest, config.get(setting.key))
