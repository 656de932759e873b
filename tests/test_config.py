"""TOML configuration: defaults, every key, and clear errors naming the file and key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from device.config import DEFAULT_JOURNAL, FIELD_NAMES, Config, load_config
from device.errors import ConfigError, SmscmdError

FULL = """
[agent]
port = "/dev/ttyUSB2"
journal = "/srv/smscmd/j.sqlite3"
baudrate = 9600
allowed_senders = ["000", "+491701234567", "000"]
reply_to = "+491701234567"
storage = "ME"
log_level = "debug"

[timeouts]
command = 2
send = 30.5
health_interval = 15
reconnect_initial = 0.1
reconnect_max = 5
"""


def write(tmp_path: Path, text: str, name: str = "smscmd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.port is None
    assert config.journal == DEFAULT_JOURNAL == Path("/var/lib/smscmd/journal.sqlite3")
    assert config.allowed_senders == ("000",)
    assert config.reply_to == "000"
    assert config.storage == "SM"
    assert config.baudrate == 115200
    assert config.command_timeout == 10.0
    assert config.send_timeout == 60.0
    assert config.health_interval == 60.0
    assert (config.reconnect_initial, config.reconnect_max) == (0.5, 30.0)
    assert config.log_level == "INFO"


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()
    assert load_config(write(tmp_path, "[agent]\n[timeouts]\n")) == Config()


def test_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config == Config(
        port="/dev/ttyUSB2",
        journal=Path("/srv/smscmd/j.sqlite3"),
        allowed_senders=("000", "+491701234567"),
        reply_to="+491701234567",
        storage="ME",
        baudrate=9600,
        command_timeout=2.0,
        send_timeout=30.5,
        health_interval=15.0,
        reconnect_initial=0.1,
        reconnect_max=5.0,
        log_level="DEBUG",
    )
    assert isinstance(config.command_timeout, float)


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.port = "x"  # type: ignore[misc]


def test_relative_journal_is_relative_to_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[agent]\njournal = "data/j.sqlite3"\n'))
    assert config.journal == tmp_path / "data" / "j.sqlite3"


def test_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path, port="/dev/ttyACM0", journal=tmp_path / "o.sqlite3", baudrate=None)
    assert config.port == "/dev/ttyACM0"
    assert config.journal == tmp_path / "o.sqlite3"
    assert config.baudrate == 9600  # None: not given
    assert load_config(None, journal="x.sqlite3").journal == Path("x.sqlite3")
    assert load_config(None, log_level="warning").log_level == "WARNING"


def test_bad_override() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, baudrate=0)
    assert info.value.key is not None and "baudrate" in info.value.key
    with pytest.raises(TypeError):
        load_config(None, colour="blue")


def test_field_names() -> None:
    assert "port" in FIELD_NAMES and "command_timeout" in FIELD_NAMES


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.path == str(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    [
        "[agent\nport = 1\n",
        "port = \n",
        "[agent]\nport = '/dev/a'\nport = '/dev/b'\n",
    ],
)
def test_bad_toml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_config(path)
    assert info.value.path == str(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[agent]\nport = "/dev/tty\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[agnet]\nport = 'x'\n", "agnet"),
        ("port = '/dev/ttyUSB0'\n", "port"),
        ("[agent]\nbaud = 9600\n", "agent.baud"),
        ("[timeouts]\ncommand_timeout = 3\n", "timeouts.command_timeout"),
    ],
)
def test_unknown_table_or_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="unknown") as info:
        load_config(path)
    assert info.value.key == key
    assert info.value.path == str(path)
    assert f"{path}: {key}: " in str(info.value)


def test_table_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a table") as info:
        load_config(write(tmp_path, "agent = 1\n"))
    assert info.value.key == "agent"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[agent]\nport = 5\n", "agent.port", "string"),
        ("[agent]\nport = ''\n", "agent.port", "non-empty"),
        ("[agent]\njournal = 1\n", "agent.journal", "path"),
        ("[agent]\nbaudrate = '9600'\n", "agent.baudrate", "integer"),
        ("[agent]\nbaudrate = 96.0\n", "agent.baudrate", "integer"),
        ("[agent]\nbaudrate = true\n", "agent.baudrate", "integer"),
        ("[agent]\nbaudrate = -1\n", "agent.baudrate", "> 0"),
        ("[agent]\nallowed_senders = '000'\n", "agent.allowed_senders", "list"),
        ("[agent]\nallowed_senders = []\n", "agent.allowed_senders", "at least one"),
        ("[agent]\nallowed_senders = [0]\n", "agent.allowed_senders", "strings"),
        ("[agent]\nallowed_senders = ['0 0']\n", "agent.allowed_senders", "whitespace"),
        ("[agent]\nreply_to = 0\n", "agent.reply_to", "phone number"),
        ("[agent]\nreply_to = 'twilio'\n", "agent.reply_to", "phone number"),
        ("[agent]\nstorage = 'sm'\n", "agent.storage", "upper-case"),
        ("[agent]\nstorage = 'SMS'\n", "agent.storage", "two"),
        ("[agent]\nlog_level = 'LOUD'\n", "agent.log_level", "INFO"),
        ("[timeouts]\ncommand = 0\n", "timeouts.command", "> 0"),
        ("[timeouts]\ncommand = -1.5\n", "timeouts.command", "> 0"),
        ("[timeouts]\nsend = '60'\n", "timeouts.send", "seconds"),
        ("[timeouts]\nhealth_interval = false\n", "timeouts.health_interval", "seconds"),
        ("[timeouts]\nhealth_interval = inf\n", "timeouts.health_interval", "> 0"),
        ("[timeouts]\nreconnect_initial = nan\n", "timeouts.reconnect_initial", "> 0"),
        ("[timeouts]\nreconnect_max = 0.1\n", "timeouts.reconnect_max", "reconnect_initial"),
    ],
)
def test_wrong_type_or_range(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert info.value.path == str(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: ")
    assert expected in message


def test_error_is_smscmd_error(tmp_path: Path) -> None:
    with pytest.raises(SmscmdError):
        load_config(tmp_path / "missing.toml")


def test_storage_auto_and_the_mode_and_profile_tables(tmp_path: Path) -> None:
    text = "[agent]\nstorage = 'auto'\nmode = 'PDU'\nprofile = 'quectel'\n"
    config = load_config(write(tmp_path, text))
    assert (config.storage, config.mode, config.profile) == ("auto", "pdu", "quectel")
    with pytest.raises(ConfigError, match='expected "text" or "pdu"'):
        load_config(write(tmp_path, "[agent]\nmode = 'morse'\n"))
    with pytest.raises(ConfigError, match="quectel-bg96"):
        load_config(write(tmp_path, "[agent]\nprofile = 'frob'\n"))
