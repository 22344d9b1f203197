"""One configuration flow: defaults < a file < ``STREAM_HARNESS_*`` environment < flags.

The file is ``stream-harness.toml`` in the working directory or, when there is none, the
``[tool.stream-harness]`` table of ``pyproject.toml`` there.  Top-level keys apply to every
command that has the setting; a table named after a command (``[load]``, or
``[tool.stream-harness.load]``) overrides them for that command only::

    contract = "openai"
    total-timeout = 60

    [load]
    users = 50

This module is pure: it takes the files' texts and the environment as a mapping (the CLI and
the pytest plugin read them) and returns a :class:`Config`; flags are applied by the caller,
which asks :meth:`Config.get` only for what the command line did not give.  An unknown key or a
bad value is a :class:`ConfigError` (exit 2) whose one line names the key and where it came from.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from harness._core.errors import UsageError
from harness._core.options import (
    DEFAULT_CONTRACT,
    DEFAULT_EXAMPLES,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_PROCESSES,
    DEFAULT_RUN_TIME,
    DEFAULT_TOTAL_TIMEOUT,
    DEFAULT_USERS,
)
from harness._core.session import DEFAULT_MAX_EVENTS
from harness._core.sse import DEFAULT_MAX_EVENT_BYTES

__all__ = [
    "COMMANDS",
    "ENV_PREFIX",
    "ENV_RESERVED",
    "LOCAL_FILE",
    "PYPROJECT",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "boolean",
    "duration",
    "load_config",
    "positive_float",
    "positive_int",
]

LOCAL_FILE: Final = "stream-harness.toml"
PYPROJECT: Final = "pyproject.toml"
ENV_PREFIX: Final = "STREAM_HARNESS_"
#: Our environment names that are not settings: the load runner's hand-over to the Locust
#: process (``_load/_runner.py``) and the switch that shows tracebacks.
ENV_RESERVED: Final = frozenset(
    {
        "STREAM_HARNESS_DEBUG",
        "STREAM_HARNESS_HEADERS",
        "STREAM_HARNESS_PATH",
        "STREAM_HARNESS_PROXY",
    }
)
#: Who reads the configuration ("pytest": the plugin's fixtures).
COMMANDS: Final = ("check", "manifest", "openapi", "load", "pytest")


class ConfigError(UsageError):
    """An unknown key or a bad value in the file or the environment (exit 2)."""


# -- values ----------------------------------------------------------------------------------
# Each parser takes what TOML gives (a number, a string) or an environment string, and raises
# ValueError with the message a user reads after the key's name.  The flags use them too.


def _number(value: object, expected: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {expected}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"expected {expected}, got {value!r}") from None


def positive_float(value: object) -> float:
    """Seconds (or a rate): a number greater than 0."""
    number = _number(value, "a number of seconds")
    if not number > 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return number


def integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a whole number, got {value!r}")


def positive_int(value: object) -> int:
    number = integer(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {value!r}")
    return number


def boolean(value: object) -> bool:
    """``true``/``false`` in TOML; ``1``/``0``, ``true``/``false``, ``yes``/``no`` in the
    environment."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


_DURATION: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"2m"``, ``"1h30m"``.

    >>> duration("1h30m"), duration(90), duration("2.5")
    (5400.0, 90.0, 2.5)
    """
    expected = "expected 90, 90s, 2m or 1h30m"
    try:
        seconds = _number(value, expected)
    except ValueError:
        t = str(value).strip().lower()
        m = _DURATION.match(t)
        if isinstance(value, bool) or not t or m is None:
            raise ValueError(f"{expected}, got {value!r}") from None
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = h * 3600.0 + mi * 60.0 + s
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return seconds


# -- the settings ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of the file, its environment variable and its flag (``--<key>``)."""

    key: str
    default: object
    parse: Callable[[object], Any]
    commands: frozenset[str]

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace("-", "_")

    @property
    def dest(self) -> str:
        """The flag's attribute on an argparse namespace."""
        return self.key.replace("-", "_")


# ``openapi`` takes every stream setting but ``contract``: its --contract is per operation.
_EVERY = frozenset({"check", "manifest", "openapi", "load", "pytest"})
_STREAMS = frozenset({"check", "manifest", "load", "pytest"})
_CHECKS = frozenset({"check", "manifest", "openapi"})
_PROPERTIES = frozenset({"manifest", "openapi", "pytest"})
_LOAD = frozenset({"load"})

SETTINGS: Final[Mapping[str, Setting]] = {
    s.key: s
    for s in (
        Setting("contract", DEFAULT_CONTRACT, text, _STREAMS),
        Setting("first-byte-timeout", DEFAULT_FIRST_BYTE_TIMEOUT, positive_float, _EVERY),
        Setting("idle-timeout", DEFAULT_IDLE_TIMEOUT, positive_float, _EVERY),
        Setting("total-timeout", DEFAULT_TOTAL_TIMEOUT, positive_float, _EVERY),
        Setting("max-events", DEFAULT_MAX_EVENTS, positive_int, _CHECKS),
        Setting("max-event-bytes", DEFAULT_MAX_EVENT_BYTES, positive_int, _CHECKS),
        Setting("strict", False, boolean, _EVERY),
        Setting("max-retry-wait", DEFAULT_MAX_RETRY_WAIT, positive_float, frozenset({"check"})),
        Setting("examples", DEFAULT_EXAMPLES, positive_int, _PROPERTIES),
        Setting("seed", None, integer, _PROPERTIES),
        Setting("users", DEFAULT_USERS, positive_int, _LOAD),
        Setting("run-time", DEFAULT_RUN_TIME, duration, _LOAD),
        Setting("processes", DEFAULT_PROCESSES, positive_int, _LOAD),
        Setting("max-inflight", DEFAULT_MAX_INFLIGHT, positive_int, _LOAD),
    )
}


@dataclass(frozen=True, slots=True)
class Config:
    """The settings one command sees: values given by the file or the environment, parsed,
    with where each came from; everything else is its default."""

    command: str
    values: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """The value of ``key`` for this command (given, else the default)."""
        return self.values[key] if key in self.values else SETTINGS[key].default

    def is_set(self, key: str) -> bool:
        return key in self.values

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_toml(name: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: not valid TOML: {e}") from None


def _table(local: str | None, pyproject: str | None) -> tuple[str, dict[str, Any]]:
    """The table of settings and the name it is reported by."""
    if local is not None:
        return LOCAL_FILE, _parse_toml(LOCAL_FILE, local)
    if pyproject is None:
        return "", {}
    tool = _parse_toml(PYPROJECT, pyproject).get("tool", {})
    table = tool.get("stream-harness", {}) if isinstance(tool, dict) else {}
    where = f"{PYPROJECT} [tool.stream-harness]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    close = difflib.get_close_matches("stream-harness", list(tool), n=1, cutoff=0.8)
    if not table and close:
        raise ConfigError(
            f"{PYPROJECT}: unknown table [tool.{close[0]}] (did you mean [tool.stream-harness]?)"
        )
    return where, table


def _parse(key: str, raw: object, where: str) -> Any:
    try:
        return SETTINGS[key].parse(raw)
    except ValueError as e:
        raise ConfigError(f"{where}: {key}: {e}") from None


class _Found:
    """The values a command sees, and where each came from.  Every value is parsed, also
    those of other commands: a file that is wrong is wrong for every command."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def add(self, key: str, raw: object, where: str, scope: str | None = None) -> None:
        value = _parse(key, raw, where)
        if (scope or self.command) == self.command and self.command in SETTINGS[key].commands:
            self.values[key], self.sources[key] = value, where

    def table(self, table: Mapping[str, Any], where: str) -> None:
        for key, raw in table.items():
            if key in COMMANDS:
                if not isinstance(raw, dict):
                    raise ConfigError(f"{where}: {key}: expected a table of settings, got {raw!r}")
                continue
            if key not in SETTINGS:
                raise ConfigError(
                    f"{where}: unknown key {key!r}{_suggest(key, [*SETTINGS, *COMMANDS])}"
                )
            self.add(key, raw, where)
        for name in COMMANDS:
            if isinstance(table.get(name), dict):
                self.command_table(name, table[name], where)

    def command_table(self, name: str, table: Mapping[str, Any], parent: str) -> None:
        where = f"{parent} [{name}]" if parent == LOCAL_FILE else f"{parent[:-1]}.{name}]"
        for key, raw in table.items():
            if key not in SETTINGS:
                raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, list(SETTINGS))}")
            if name not in SETTINGS[key].commands:
                users = ", ".join(c for c in COMMANDS if c in SETTINGS[key].commands)
                raise ConfigError(f"{where}: {key} is not a setting of {name} (only {users})")
            self.add(key, raw, where, scope=name)

    def env(self, env: Mapping[str, str]) -> None:
        by_env = {s.env: s for s in SETTINGS.values()}
        for name, raw in sorted(env.items()):
            if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
                continue
            if name not in by_env:
                hint = _suggest(name, sorted(by_env))
                raise ConfigError(f"unknown environment variable {name}{hint}")
            self.add(by_env[name].key, raw, f"environment {name}")


def load_config(
    command: str,
    *,
    local: str | None = None,
    pyproject: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """The settings ``command`` sees, from the texts of ``stream-harness.toml`` (``local``)
    and ``pyproject.toml`` (read only when there is no ``local``) and the environment.

    >>> c = load_config("load", local='total-timeout = 60\\n[load]\\nusers = 5',
    ...                 env={"STREAM_HARNESS_USERS": "7"})
    >>> c.get("total-timeout"), c.get("users"), c.source("users"), c.get("contract")
    (60.0, 7, 'environment STREAM_HARNESS_USERS', 'prefab')
    """
    found = _Found(command)
    where, table = _table(local, pyproject)
    found.table(table, where)
    found.env(env or {})
    return Config(command, found.values, found.sources)
