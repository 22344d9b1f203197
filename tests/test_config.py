"""One configuration flow: defaults < stream-harness.toml / [tool.stream-harness] < the
environment < flags.  The loader is pure (``harness/_core/config.py``, tested on texts); the
commands and the pytest plugin are run as real subprocesses in a directory holding the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness._core.config import SETTINGS, ConfigError, load_config
from harness._core.options import CheckOptions

DATA = Path(__file__).parent / "data"
EXE = Path(sys.executable).parent / "stream-harness"

pytestmark = pytest.mark.timeout(120)


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_HARNESS_")}
    return {**clean, **extra}


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=_env(**env),
        check=False,
    )


def checked_events(cwd: Path, *flags: str, **env: str) -> int:
    """How many events of the 4-event recording ``check`` read (max-events bounds it)."""
    r = run(cwd, "check", str(DATA / "good.sse"), "--format", "json", "--no-report", *flags, **env)
    assert r.returncode == 0, r.stderr
    events: int = json.loads(r.stdout)["events"]
    return events


# -- the pure loader -------------------------------------------------------------------------


def test_load_config_when_nothing_given_then_every_default_is_the_options_default() -> None:
    config = load_config("check")
    options = CheckOptions()
    for setting in SETTINGS.values():
        assert not config.is_set(setting.key)
        if hasattr(options, setting.dest):
            assert config.get(setting.key) == getattr(options, setting.dest), setting.key


def test_load_config_when_file_and_env_both_set_a_key_then_env_wins() -> None:
    config = load_config(
        "check",
        local="total-timeout = 5\nidle-timeout = 2",
        env={"STREAM_HARNESS_TOTAL_TIMEOUT": "7"},
    )
    assert (config.get("total-timeout"), config.get("idle-timeout")) == (7.0, 2.0)
    assert config.source("total-timeout") == "environment STREAM_HARNESS_TOTAL_TIMEOUT"
    assert config.source("idle-timeout") == "stream-harness.toml"


def test_load_config_when_command_table_given_then_it_overrides_top_level_for_that_command() -> (
    None
):
    text = "total-timeout = 5\n[load]\ntotal-timeout = 300\nusers = 3\n"
    assert load_config("load", local=text).get("total-timeout") == 300.0
    assert load_config("check", local=text).get("total-timeout") == 5.0
    assert load_config("check", local=text).get("users") == 10  # not check's setting


def test_load_config_when_stream_harness_toml_exists_then_pyproject_is_not_read() -> None:
    pyproject = '[tool.stream-harness]\ncontract = "openai"\nusers = 2\n'
    assert load_config("load", pyproject=pyproject).get("contract") == "openai"
    config = load_config("load", local='contract = "text"', pyproject=pyproject)
    assert (config.get("contract"), config.get("users")) == ("text", 10)


def test_load_config_when_pyproject_has_no_table_then_defaults() -> None:
    config = load_config(
        "check", pyproject='[project]\nname = "x"\n[tool.ruff]\nline-length = 99\n'
    )
    assert config.values == {}


_BAD = [
    ({"local": "total-timout = 3"},
     "stream-harness.toml: unknown key 'total-timout' (did you mean 'total-timeout'?)"),
    ({"local": "[lod]\nusers = 3"},
     "stream-harness.toml: unknown key 'lod' (did you mean 'load'?)"),
    ({"local": "[load]\nuser = 3"},
     "stream-harness.toml [load]: unknown key 'user' (did you mean 'users'?)"),
    ({"local": "[check]\nusers = 3"},
     "stream-harness.toml [check]: users is not a setting of check (only load)"),
    ({"pyproject": "[tool.stream-harness]\nexamples = 0"},  # not check's, still checked
     "pyproject.toml [tool.stream-harness]: examples: must be at least 1, got 0"),
    ({"pyproject": "[tool.stream-harness.load]\nrun-time = 'soon'"},
     "pyproject.toml [tool.stream-harness.load]: run-time: expected 90, 90s, 2m or 1h30m"),
    ({"pyproject": "[tool.stream_harness]\nusers = 1"},
     "pyproject.toml: unknown table [tool.stream_harness] (did you mean [tool.stream-harness]?)"),
    ({"env": {"STREAM_HARNESS_IDLE_TIMEOUT": "soon"}},
     "environment STREAM_HARNESS_IDLE_TIMEOUT: idle-timeout: expected a number of seconds, "
     "got 'soon'"),
    ({"env": {"STREAM_HARNESS_CONTRACTS": "x"}},
     "unknown environment variable STREAM_HARNESS_CONTRACTS "
     "(did you mean 'STREAM_HARNESS_CONTRACT'?)"),
    ({"local": "max-events = true"},
     "stream-harness.toml: max-events: expected a whole number, got True"),
    ({"local": "contract = 'a"}, "stream-harness.toml: not valid TOML: "),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "message"), _BAD)
def test_load_config_when_key_or_value_is_bad_then_one_line_naming_key_and_source(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_config("check", **kwargs)  # type: ignore[arg-type]
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_load_config_when_env_names_are_ours_but_not_settings_then_ignored() -> None:
    env = {"STREAM_HARNESS_DEBUG": "1", "STREAM_HARNESS_HEADERS": "{}", "STREAM_HARNESS_PATH": "/"}
    assert load_config("load", env=env).values == {}


# -- the commands, as real subprocesses ------------------------------------------------------


def test_check_when_file_env_and_flag_set_max_events_then_flag_beats_env_beats_file(
    tmp_path: Path,
) -> None:
    assert checked_events(tmp_path) == 4
    (tmp_path / "stream-harness.toml").write_text("max-events = 1\n")
    assert checked_events(tmp_path) == 1
    assert checked_events(tmp_path, STREAM_HARNESS_MAX_EVENTS="3") == 3
    assert checked_events(tmp_path, "--max-events", "2", STREAM_HARNESS_MAX_EVENTS="3") == 2


def test_check_when_pyproject_has_the_table_then_it_applies(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\n\n[tool.stream-harness]\nmax-events = 2\n'
    )
    assert checked_events(tmp_path) == 2
    (tmp_path / "stream-harness.toml").write_text("max-events = 3\n")
    assert checked_events(tmp_path) == 3  # the tool's own file wins


def test_check_when_file_says_strict_then_a_warning_fails_unless_env_says_no(
    tmp_path: Path,
) -> None:
    def code(**env: str) -> int:
        args = ("check", str(DATA / "good.sse"), "--no-report", "--max-events", "2")
        return run(tmp_path, *args, **env).returncode  # limit.max-events: a warning

    assert code() == 0
    (tmp_path / "stream-harness.toml").write_text("strict = true\n")
    assert code() == 1
    assert code(STREAM_HARNESS_STRICT="no") == 0


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("check", [str(DATA / "good.sse")]),
        ("manifest", [str(DATA / "gateway-manifest.json"), "--url", "http://127.0.0.1:9/"]),
        ("load", ["http://127.0.0.1:9/stream"]),
    ],
)
def test_command_when_file_has_unknown_key_then_exit_2_with_suggestion(
    tmp_path: Path, command: str, args: list[str]
) -> None:
    (tmp_path / "stream-harness.toml").write_text("contract = 'prefab'\nidle-timout = 3\n")
    r = run(tmp_path, command, *args, "--no-report" if command != "load" else "--format=json")
    assert r.returncode == 2
    assert r.stderr == (
        "stream-harness: error: stream-harness.toml: unknown key 'idle-timout' "
        "(did you mean 'idle-timeout'?)\n"
    )
    assert r.stdout == ""


def test_load_when_env_value_is_bad_then_exit_2_naming_variable(tmp_path: Path) -> None:
    r = run(tmp_path, "load", "http://127.0.0.1:9/stream", STREAM_HARNESS_RUN_TIME="forever")
    assert r.returncode == 2
    assert r.stderr == (
        "stream-harness: error: environment STREAM_HARNESS_RUN_TIME: run-time: "
        "expected 90, 90s, 2m or 1h30m, got 'forever'\n"
    )


def test_commands_without_streams_ignore_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "stream-harness.toml").write_text("bogus = 1\n")
    assert run(tmp_path, "rules").returncode == 0


# -- the pytest plugin -----------------------------------------------------------------------

_SUITE = """
def test_settings(stream_options, stream_settings):
    print("SEEN", stream_options.contract, stream_options.total_timeout,
          stream_options.idle_timeout, stream_settings["examples"])
"""


def _pytest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=_env(**env),
        check=False,
    )


def test_pytest_plugin_when_file_env_and_options_set_then_same_precedence(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(_SUITE)
    (tmp_path / "stream-harness.toml").write_text(
        'contract = "openai"\nidle-timeout = 4\n[pytest]\nexamples = 7\n'
    )
    r = _pytest(tmp_path, STREAM_HARNESS_TOTAL_TIMEOUT="9")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SEEN openai 9.0 4.0 7" in r.stdout
    r = _pytest(tmp_path, "--stream-timeout", "3", "--stream-contract", "text")
    assert "SEEN text 3.0 3.0 7" in r.stdout, r.stdout + r.stderr


def test_pytest_plugin_when_file_has_unknown_key_then_usage_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(_SUITE)
    (tmp_path / "stream-harness.toml").write_text("[pytest]\nexampels = 7\n")
    r = _pytest(tmp_path)
    assert r.returncode != 0
    assert "unknown key 'exampels' (did you mean 'examples'?)" in r.stdout + r.stderr


def test_every_setting_is_a_flag_without_argparse_default_on_its_commands() -> None:
    """A flag with an argparse default would always beat the file and the environment."""
    import argparse

    from harness._cli.main import _build_parser

    sub = next(a for a in _build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for setting in SETTINGS.values():
        for command in setting.commands - {"pytest"}:
            actions = {a.dest: a for a in sub.choices[command]._actions}
            assert setting.dest in actions, f"{command} has no --{setting.key}"
            assert actions[setting.dest].default is None, f"{command} --{setting.key}"


def test_every_stream_harness_variable_the_code_names_is_a_setting_or_reserved() -> None:
    """An internal variable (the load runner's hand-over to Locust) missing from ENV_RESERVED
    would be an "unknown environment variable" error in the process that inherits it."""
    import re

    from harness._core.config import ENV_RESERVED

    root = Path(__file__).parent.parent / "harness"
    named = {
        m
        for path in root.rglob("*.py")
        for m in re.findall(r"\bSTREAM_HARNESS_[A-Z][A-Z_]*\b", path.read_text(encoding="utf-8"))
    }
    known = {s.env for s in SETTINGS.values()} | ENV_RESERVED
    assert named - known == set()
