"""hostsim personas as data: command sets, absent commands, the README table."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostsim import cli
from hostsim.modem import EmulatedModem
from hostsim.modem.handlers import HANDLERS
from hostsim.modem.personas import (
    NOT_EMULATED,
    PERSONAS,
    README_BEGIN,
    README_END,
    markdown,
    persona,
    with_table,
)
from hostsim.modem.settings import ModemConfig, Quirk

README = Path(__file__).resolve().parent.parent / "README.md"
NAMES = sorted(PERSONAS)


def answer(modem: EmulatedModem, line: bytes) -> bytes:
    modem.feed(line)
    return modem.data_to_send()


def quiet(name: str, cmee: int) -> EmulatedModem:
    modem = EmulatedModem(persona(name))
    answer(modem, b"ATE0\r")
    assert answer(modem, b"AT+CMEE=%d\r" % cmee) == b"\r\nOK\r\n"
    return modem


@pytest.mark.parametrize("name", NAMES)
def test_every_command_of_a_persona_has_a_handler_or_says_why_not(name: str) -> None:
    config = PERSONAS[name]
    assert config.commands is not None and config.name == name
    unaccounted = config.commands - HANDLERS.keys() - config.not_emulated
    assert not unaccounted, f"{name} claims {sorted(unaccounted)} without a handler or a reason"
    assert config.not_emulated <= config.commands
    assert config.not_emulated <= NOT_EMULATED.keys()
    assert not config.not_emulated & HANDLERS.keys()


def test_every_reason_belongs_to_a_persona_and_a_handler_ends_it() -> None:
    named = set().union(*(c.commands or () for c in PERSONAS.values()))
    assert named >= NOT_EMULATED.keys()
    stale = NOT_EMULATED.keys() & HANDLERS.keys()
    assert not stale, f"{sorted(stale)} have handlers: drop them from personas.NOT_EMULATED"


@pytest.mark.parametrize("name", NAMES)
def test_persona_record_is_complete(name: str) -> None:
    config = PERSONAS[name]
    identity = (config.manufacturer, config.model, config.revision, config.imei, config.imsi)
    assert all(identity) and config.iccid.startswith("89883") and config.storages
    digits = [int(c) for c in reversed(config.imei)]
    doubled = (d if i % 2 == 0 else sum(divmod(d * 2, 10)) for i, d in enumerate(digits))
    assert len(config.imei) == 15 and sum(doubled) % 10 == 0, "IMEI fails the Luhn check"
    assert config.sources and all(s.document and s.section for s in config.sources)
    assert persona(name) == config and persona(name) is not config


def test_unknown_persona_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="quectel-bg96"):
        persona("nokia-3310")


def test_a_persona_has_exactly_the_handlers_of_its_set() -> None:
    for config in PERSONAS.values():
        modem = EmulatedModem(config)
        assert modem.commands == config.commands
        assert modem.handlers.keys() == HANDLERS.keys() & config.commands
    bare = EmulatedModem(ModemConfig())
    assert bare.handlers.keys() == HANDLERS.keys() == bare.commands


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("quectel-bg96", ["Quectel", "BG96", "Revision: BG96MAR02A07M1G"]),
        (
            "simcom-sim7600",
            [
                "Manufacturer: SIMCOM INCORPORATED",
                "Model: SIMCOM_SIM7600E-H",
                "Revision: LE20B04SIM7600M22",
                "IMEI: 862636051234563",
                "+GCAP: +CGSM,+FCLASS,+DS",
            ],
        ),
        (
            "ublox-sara-r410m",
            [
                "Manufacturer: u-blox",
                "Model: SARA-R410M-02B",
                "Revision: L0.0.00.00.05.06 [Feb 03 2018 13:00:41]",
                "SVN: 03",
                "IMEI: 352753091234565",
            ],
        ),
    ],
)
def test_ati_lines_follow_the_family(name: str, expected: list[str]) -> None:
    modem = quiet(name, 1)
    body = "".join(f"\r\n{line}" for line in expected)
    assert answer(modem, b"ATI\r") == f"{body}\r\n\r\nOK\r\n".encode()


def test_iccid_commands_follow_the_family() -> None:
    ublox = quiet("ublox-sara-r410m", 1)
    assert answer(ublox, b"AT+CCID\r") == b"\r\n+CCID: 89883070000012345678\r\n\r\nOK\r\n"
    for name in ("quectel-bg96", "quectel-eg25g", "simcom-sim7600"):
        assert answer(quiet(name, 2), b"AT+CCID\r") == b"\r\nERROR\r\n", name


def test_flow_control_k_only_on_ublox() -> None:
    assert answer(quiet("ublox-sara-r410m", 1), b"AT&K3\r") == b"\r\nOK\r\n"
    assert answer(quiet("quectel-bg96", 1), b"AT&K3\r") == b"\r\nERROR\r\n"


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [(0, b"ERROR"), (1, b"+CME ERROR: 100"), (2, b"+CME ERROR: unknown")],
)
def test_ublox_answers_an_absent_command_per_cmee(cmee: int, expected: bytes) -> None:
    modem = quiet("ublox-sara-r410m", cmee)
    assert answer(modem, b"AT+QCCID\r") == b"\r\n" + expected + b"\r\n"
    # A command it has but hostsim does not emulate answers the same way.
    assert answer(modem, b"ATH\r") == b"\r\n" + expected + b"\r\n"
    # The line stops at the absent command.
    assert answer(modem, b"AT+FOO;+CSQ\r") == b"\r\n" + expected + b"\r\n"


@pytest.mark.parametrize("name", ["quectel-bg96", "quectel-eg25g", "simcom-sim7600"])
@pytest.mark.parametrize("cmee", [0, 1, 2])
def test_others_answer_an_absent_command_plain_error(name: str, cmee: int) -> None:
    modem = quiet(name, cmee)
    assert answer(modem, b"AT+UPSV?\r") == b"\r\nERROR\r\n"
    assert answer(modem, b"ATH\r") == b"\r\nERROR\r\n"


@given(
    name=st.sampled_from(NAMES),
    command=st.from_regex(r"\+[A-Z]{1,8}", fullmatch=True),
    suffix=st.sampled_from(["", "?", "=?", "=1"]),
)
def test_any_command_outside_the_set_answers_the_absent_result(
    name: str, command: str, suffix: str
) -> None:
    config = PERSONAS[name]
    modem = quiet(name, 1)
    out = answer(modem, f"AT{command}{suffix}\r".encode())
    if command in modem.handlers:
        return
    cme = Quirk.ABSENT_COMMAND_IS_CME_UNKNOWN in config.quirks
    assert out == (b"\r\n+CME ERROR: 100\r\n" if cme else b"\r\nERROR\r\n")


@pytest.mark.parametrize("name", NAMES)
def test_clac_answer_is_the_persona_set(name: str) -> None:
    modem = quiet(name, 1)
    out = answer(modem, b"AT+CLAC\r").decode()
    listed = {line.removeprefix("AT") for line in out.split("\r\n") if line.startswith("AT")}
    assert listed == modem.commands


def test_markdown_marks_each_cell() -> None:
    table = markdown()
    assert "| `AT+CMGS` | yes | yes | yes | yes | yes |" in table
    assert "| `AT+CCID` |  |  |  |  | yes |" in table
    assert "| `ATD` | not emulated |" in table
    assert "- `ATD`: " + NOT_EMULATED["D"] in table


def test_readme_table_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert README_BEGIN in text and README_END in text
    assert with_table(text) == text, (
        "the README's persona table is stale: run `python3 -m hostsim personas --readme README.md`"
    )


def test_cli_prints_and_rewrites_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["personas"]) == 0
    assert capsys.readouterr().out == markdown()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold\n{README_END}\nrest\n", encoding="utf-8")
    assert cli.main(["personas", "--readme", str(readme)]) == 0
    expected = f"intro\n{README_BEGIN}\n{markdown()}{README_END}\nrest\n"
    assert readme.read_text(encoding="utf-8") == expected
    readme.write_text("no markers\n", encoding="utf-8")
    assert cli.main(["personas", "--readme", str(readme)]) == 1
    assert "markers" in capsys.readouterr().err
