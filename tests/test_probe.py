"""``smscmd probe``: identity, SIM, registration, signal, SMS readiness; exit status."""

from __future__ import annotations

import asyncio
import json
import sys

from conftest import communicate

from hostsim.modem.settings import RegStat
from hostsim.pty import SimulatedModem
from hostsim.sim import HostSim


async def probe(gw: SimulatedModem, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", "probe", "--port", gw.path, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await communicate(proc, 30)
    assert proc.returncode is not None, err
    return proc.returncode, out.decode()


async def test_ready_modem() -> None:
    async with HostSim() as sim:
        code, out = await probe(sim.modems[0], "--json")
        report = json.loads(out)
        assert code == 0 and report["ready"] is True and report["reasons"] == []
        assert (report["manufacturer"], report["model"]) == ("Quectel", "BG96")
        assert report["iccid"] == "89883070000012345678" and report["super_sim"] is True
        assert report["registration"] == "registered (roaming)"
        assert report["signal"].endswith("dBm")
        code, out = await probe(sim.modems[0])
        assert code == 0 and "ready         yes" in out


async def test_not_ready_modem_says_why() -> None:
    async with HostSim() as sim:
        gw = sim.modems[0]
        gw.modem.set_registration(RegStat.SEARCHING)
        code, out = await probe(gw)
        assert code == 1 and "not ready     not registered (searching)" in out
        gw.modem.sim_ready = False
        code, out = await probe(gw, "--json")
        reasons = json.loads(out)["reasons"]
        assert code == 1 and any(r.startswith("SIM not ready") for r in reasons)


async def test_missing_port() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "device.cli", "probe", "--port", "/dev/nonexistent-tty",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await communicate(proc, 30)
    assert proc.returncode == 1 and b"cannot open" in out
