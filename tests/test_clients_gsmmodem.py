"""python-gsmmodem-new 0.13 (PyPI, unchanged, in its own virtual environment
``.venv-clients``) against ``hostsim run``, on the emulated modem's pty.

The library runs in a subprocess, ``tests/clients/gsmmodem_driver.py`` (JSON lines
out, one per step): ``connect()``, ``networkName``, ``signalStrength``,
``sendSms('000', …)`` (comes back out of the API as ``from_sim``), the receive
callback for commands delivered through the API, ``listStoredSms()``; in text mode and
in PDU mode (``smsTextMode``). Its DEBUG log (every AT line) stays in the test's
``tmp_path``; a failure names the commands hostsim refused.

The burst test delivers several commands at once and counts what the callback sees.
python-gsmmodem handles only the first ``+CMTI`` of the lines it reads in one go (and
a ``+CMTI`` that arrives while it waits for an answer becomes part of that answer), so
it sees fewer: the rest stays in the module's storage. That is the client's field bug
which a faithful module reproduces; the test measures it and asserts only that
hostsim lost nothing (callbacks + stored = delivered).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from clients.support import REPO, WAIT, Cloud, evidence, hostsim_args, needs, require_gsmmodem
from harness import Listener, running_hostsim

pytestmark = pytest.mark.clients

DRIVER = REPO / "tests" / "clients" / "gsmmodem_driver.py"
COMMAND = "ping: from the cloud to python-gsmmodem"
REPLY = "pong from python-gsmmodem"
BURST = 5

NEEDS_CSCA = needs("needs AT+CSCA?: connect() reads the service centre address")


@pytest.fixture(scope="module")
def python() -> Path:
    """In a fixture: a missing client is a skip (or, in CI, an error), never an xfail."""
    return require_gsmmodem()


async def drive(
    tmp: Path, python: Path, persona: str, mode: str, payloads: list[str]
) -> dict[str, Any]:
    """Run the driver on a fresh hostsim, deliver ``payloads`` once it is ready; its
    steps by name (and the log's path as ``log``), every from_sim command as ``from_sim``."""
    log = tmp / "gsmmodem.log"
    steps: dict[str, Any] = {"log": log}
    async with (
        Listener().serving() as hooks,
        running_hostsim(
            tmp, *hostsim_args(persona), "--commands-webhook", hooks.url + "/fleet"
        ) as ready,
    ):
        cloud = Cloud(ready, hooks)
        proc = await asyncio.create_subprocess_exec(
            str(python), str(DRIVER), cloud.link, mode, str(log),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        try:
            async with asyncio.timeout(WAIT):
                while line := await proc.stdout.readline():
                    step = json.loads(line)
                    steps[step.pop("step")] = step
                    if "ready" in steps and "expect" not in steps:
                        await cloud.deliver(*payloads)
                        steps["expect"] = len(payloads)
                        proc.stdin.write(json.dumps({"expect": len(payloads)}).encode() + b"\n")
                        await proc.stdin.drain()
                code = await proc.wait()
        except json.JSONDecodeError:
            rest = await proc.stdout.read()
            pytest.fail(evidence(f"driver failed:\n{line.decode()}{rest.decode()}", log))
        except TimeoutError:
            pytest.fail(evidence(f"driver not done within {WAIT} s: {steps}", log))
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        steps["code"] = code
        if "sendSms" in steps and "error" not in steps["sendSms"]:
            steps["from_sim"] = await cloud.from_sim()
    return steps


def value(steps: dict[str, Any], name: str) -> Any:
    """The value of step ``name``; a failure with the client's error and log otherwise."""
    step = steps.get(name)
    if step is None or "error" in step:
        pytest.fail(evidence(f"{name}: {step or 'not reached'} (steps: {steps})", steps["log"]))
    return step["value"]


@NEEDS_CSCA
@pytest.mark.parametrize("mode", ["text", "pdu"])
@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gsmmodem(tmp_path: Path, python: Path, mode: str) -> None:
    steps = await drive(tmp_path, python, "quectel-bg96", mode, [COMMAND])
    assert value(steps, "connect")
    assert value(steps, "networkName")
    assert 0 <= value(steps, "signalStrength") <= 31, steps
    assert value(steps, "sendSms") is not None
    assert steps["from_sim"] == f"{REPLY} ({mode})"
    assert value(steps, "received") == [COMMAND], evidence(str(steps), steps["log"])
    assert value(steps, "listStoredSms") == [], evidence(str(steps), steps["log"])
    assert steps["code"] == 0


@NEEDS_CSCA
@pytest.mark.timeout(60)
@pytest.mark.async_timeout(50)
async def test_gsmmodem_burst(tmp_path: Path, python: Path, record_property: Any) -> None:
    burst = [f"ping: burst {n}" for n in range(BURST)]
    steps = await drive(tmp_path, python, "quectel-bg96", "text", burst)
    seen, stored = value(steps, "received"), value(steps, "listStoredSms")
    print(f"python-gsmmodem burst: {len(seen)} of {BURST} callbacks, {len(stored)} left stored")
    record_property("gsmmodem_burst_callbacks", len(seen))
    assert sorted(seen + stored) == sorted(burst), evidence(str(steps), steps["log"])
