"""The modem supervisor's tables: the bring-up steps run by one loop, and errors to triggers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from device.at.errors import (
    CmeError,
    CommandError,
    CommandTimeout,
    ConnectionLost,
    ModemError,
    ResponseError,
)
from device.config import Config
from device.errors import JournalError
from device.modem import Lifecycle, ModemState, Trigger
from device.modem.messages import ModuleIdentity
from device.modem.profiles import PROFILES
from device.modem.supervisor import (
    BRING_UP,
    ERROR_RULES,
    ESCALATE_AFTER,
    PROBE_ATTEMPTS,
    ErrorRule,
    ModemSupervisor,
    Recovery,
    RegistrationLost,
    RestartDetected,
    Retry,
    rule_for,
)
from device.observer import Counters

S, T = ModemState, Trigger
BUSY = CmeError("AT+CPMS", 14, "SIM busy")


class FakeChannel:
    def __init__(self) -> None:
        self.echo_count = 0
        self.escapes = 0

    def cancel_sms_input(self) -> None:
        self.escapes += 1


class FakeModem:
    """Answers the bring-up calls from scripts: each entry is a result or an error."""

    def __init__(self, **scripts: list[Any]) -> None:
        self.channel = FakeChannel()
        self.identity = ModuleIdentity("Quectel", "BG96", "R1", "1")
        self.profile = PROFILES["generic"]
        self.registration_text = "not registered"
        self.rssi = 20
        self.iccid = ""
        self.calls: list[str] = []
        self._scripts = scripts

    def _next(self, name: str, default: Any) -> Any:
        self.calls.append(name)
        script = self._scripts.get(name)
        result = script.pop(0) if script else default
        if isinstance(result, Exception):
            raise result
        return result

    async def probe(self, timeout: float) -> None:
        self._next("probe", None)

    async def configure(self) -> None:
        self._next("configure", None)
        self.profile = PROFILES["quectel-bg96"]  # the modem layer identifies the module

    async def sim_status(self) -> tuple[bool, str]:
        ready: bool = self._next("sim_status", True)
        return ready, "READY" if ready else "SIM busy"

    async def read_iccid(self) -> str:
        self.iccid = self._next("read_iccid", "89883070000012345678")
        return self.iccid

    async def setup_sms(self) -> None:
        self._next("setup_sms", None)

    async def note_read_backs(self) -> dict[str, str]:
        stuck: dict[str, str] = self._next("note_read_backs", {})
        return stuck

    async def refresh_registration(self) -> int:
        stat: int = self._next("refresh_registration", 1)
        self.registration_text = "registered" if stat in (1, 5) else "searching"
        return stat

    async def refresh_signal(self) -> int:
        return int(self._next("refresh_signal", 20))

    async def settings_intact(self) -> str | None:
        changed: str | None = self._next("settings_intact", None)
        return changed


def supervisor(initial: ModemState = S.PROBING) -> tuple[ModemSupervisor, list[ModemState]]:
    states: list[ModemState] = []
    life = Lifecycle(lambda a, b: states.append(b), initial=initial)
    config = Config(port="/dev/null", reconnect_initial=0.0, reconnect_max=0.0,
                    health_interval=0.0)  # fmt: skip
    sup = ModemSupervisor(config, life, counters=Counters(), stop=asyncio.Event(),
                          wake=asyncio.Event(), on_urc=lambda urc: None)  # fmt: skip
    return sup, states


def test_the_table_has_one_step_per_state_before_ready() -> None:
    assert set(BRING_UP) == {S.PROBING, S.CONFIGURING, S.WAITING_FOR_SIM, S.SETTING_UP_SMS,
                             S.WAITING_FOR_NETWORK, S.SUSPENDED}  # fmt: skip
    life = Lifecycle(initial=S.PROBING)
    while (step := BRING_UP.get(life.state)) is not None:  # each step's trigger leads on
        assert step.state is life.state
        life.fire(step.trigger)
    assert life.state is S.READY
    assert BRING_UP[S.PROBING].retry is Retry.PROBE
    assert BRING_UP[S.SUSPENDED].trigger is T.RESUMED


async def test_bring_up_walks_the_table_with_each_steps_retry_rule() -> None:
    modem = FakeModem(
        probe=[CommandTimeout("ATE0", 2.0)],  # silent once: ESC, then answered
        configure=[BUSY],  # busy once: retried
        sim_status=[False, False],  # not ready twice: waited out
        setup_sms=[BUSY, BUSY],
        refresh_registration=[2, 2, 2],
    )
    sup, states = supervisor()
    assert await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == [S.CONFIGURING, S.WAITING_FOR_SIM, S.SETTING_UP_SMS,
                      S.WAITING_FOR_NETWORK, S.READY]  # fmt: skip
    assert modem.channel.escapes == 1
    assert modem.calls.count("probe") == 2
    assert modem.calls.count("configure") == 2
    assert modem.calls.count("sim_status") == 3
    # The ICCID (for smscmd status) is read once, when the SIM is first ready.
    assert modem.calls.count("read_iccid") == 1
    before = modem.calls[: modem.calls.index("read_iccid")]
    assert before[-1] == "sim_status" and before.count("sim_status") == 3  # the first ready
    assert modem.calls.count("setup_sms") == 3
    assert modem.calls.count("refresh_registration") == 4
    assert sup.profile.name == "quectel-bg96"  # the modem's, once configured


async def test_a_silent_modem_gives_up_after_the_probe_attempts() -> None:
    modem = FakeModem(probe=[CommandTimeout("ATE0", 2.0)] * PROBE_ATTEMPTS)
    sup, states = supervisor()
    assert not await sup.bring_up(modem)  # type: ignore[arg-type]
    assert (states, modem.channel.escapes) == ([], PROBE_ATTEMPTS)


async def test_an_error_answer_to_the_probe_is_an_answer() -> None:
    modem = FakeModem(probe=[CommandError("ATE0", None, "error")])
    sup, states = supervisor()
    assert await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states[-1] is S.READY


async def test_a_non_busy_error_leaves_the_loop() -> None:
    modem = FakeModem(configure=[CmeError("AT+CMEE=2", 100, "unknown")])
    sup, states = supervisor()
    with pytest.raises(CmeError):
        await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == [S.CONFIGURING]


async def test_bring_up_resumes_where_the_lifecycle_is() -> None:
    modem = FakeModem(refresh_registration=[0, 5])
    sup, states = supervisor(S.WAITING_FOR_NETWORK)
    assert await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == [S.READY]
    # Not probed on the way (back from a registration loss): the settings are read back.
    assert modem.calls == [
        "refresh_registration",
        "refresh_registration",
        "refresh_signal",
        "settings_intact",
    ]


async def test_settings_lost_while_off_the_network_are_a_restart() -> None:
    modem = FakeModem(settings_intact=["AT+CMGF is 0"])
    sup, states = supervisor(S.WAITING_FOR_NETWORK)
    with pytest.raises(RestartDetected, match="AT\\+CMGF is 0"):
        await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == []


async def test_a_restart_seen_on_the_way_is_raised_before_ready() -> None:
    modem = FakeModem()
    sup, states = supervisor(S.SETTING_UP_SMS)
    sup.restarts.needed("boot banner RDY")
    with pytest.raises(RestartDetected, match="boot banner RDY"):
        await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == [S.WAITING_FOR_NETWORK]


async def test_stop_ends_a_wait() -> None:
    modem = FakeModem(sim_status=[False] * 100)
    sup, states = supervisor(S.WAITING_FOR_SIM)
    sup._stop.set()
    assert not await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states == []


RULES: list[tuple[Exception, bool, Trigger, Recovery]] = [
    (ConnectionLost("gone"), False, T.PORT_LOST, Recovery.REOPEN),
    (ConnectionLost("gone"), True, T.PORT_LOST, Recovery.REOPEN),
    (RestartDetected("banner"), False, T.RESET_DETECTED, Recovery.REINITIALISE),
    (RegistrationLost("searching"), False, T.DEREGISTERED, Recovery.WAIT_FOR_NETWORK),
    (JournalError("disk full"), False, T.JOURNAL_FAILED, Recovery.SUSPEND),
    (JournalError("disk full"), True, T.JOURNAL_FAILED, Recovery.SUSPEND),
    (CommandTimeout("AT", 1.0), False, T.UNRESPONSIVE, Recovery.PROBE),
    (CommandTimeout("AT", 1.0), True, T.RESET_DETECTED, Recovery.REINITIALISE),
    (CmeError("AT", 100, "unknown"), False, T.UNRESPONSIVE, Recovery.PROBE_AFTER_BACKOFF),
    (CmeError("AT", 100, "unknown"), True, T.RESET_DETECTED, Recovery.REINITIALISE),
    (ResponseError("garbled"), False, T.UNRESPONSIVE, Recovery.PROBE_AFTER_BACKOFF),
]


@pytest.mark.parametrize(("error", "restart_seen", "trigger", "recovery"), RULES)
def test_error_to_trigger_map(
    error: Exception, restart_seen: bool, trigger: Trigger, recovery: Recovery
) -> None:
    rule = rule_for(error, restart_seen=restart_seen)
    assert rule is not None
    assert (rule.trigger, rule.recovery) == (trigger, recovery)


def test_an_unknown_error_has_no_rule() -> None:
    assert rule_for(ValueError("bug"), restart_seen=False) is None
    assert rule_for(ModemError("any modem error"), restart_seen=False) is ERROR_RULES[-1]


def test_every_rules_trigger_is_declared_where_it_is_fired() -> None:
    """Port loss is fired once the port is closed; the others from READY (the session)."""
    for rule in ERROR_RULES:
        if rule.recovery is not Recovery.REOPEN:
            Lifecycle(initial=S.READY).fire(rule.trigger)


@pytest.mark.parametrize("state", [*BRING_UP, S.READY, S.SUSPENDED])
@pytest.mark.parametrize("rule", ERROR_RULES, ids=lambda r: r.trigger.value)
async def test_any_error_in_any_attached_state_recovers_without_invalid_trigger(
    state: ModemState, rule: ErrorRule
) -> None:
    """Whatever raised in whichever attached state, recovery never stops the agent on
    an InvalidTrigger: a trigger the table does not take from there falls back to
    probing again (and is logged as the bug it is)."""
    sup, _ = supervisor(state)
    reopen = not await sup._recover(rule, Exception("simulated"))
    assert reopen == (rule.recovery is Recovery.REOPEN)
    if not reopen:
        expected = rule.trigger if Lifecycle(initial=state).can(rule.trigger) else T.UNRESPONSIVE
        probe = Lifecycle(initial=state)
        probe.fire(expected)
        assert sup.lifecycle.state is probe.state


# -- issue 12: re-initialisations back off and escalate; one boot is one restart -----


def backing_off() -> tuple[ModemSupervisor, list[float], list[tuple[str, ...]]]:
    states: list[ModemState] = []
    told: list[tuple[str, ...]] = []
    life = Lifecycle(lambda a, b: states.append(b), initial=S.READY)
    config = Config(port="/dev/null", reconnect_initial=0.5, reconnect_max=4.0)
    sup = ModemSupervisor(config, life, counters=Counters(), stop=asyncio.Event(),
                          wake=asyncio.Event(), on_urc=lambda urc: None,
                          on_trouble=told.append)  # fmt: skip
    pauses: list[float] = []

    async def pause(seconds: float) -> bool:
        pauses.append(seconds)
        return False

    sup.pause = pause  # type: ignore[method-assign]
    return sup, pauses, told


async def test_reinitialisations_in_a_row_back_off_escalate_and_reset_on_health() -> None:
    """Issue 12: a module whose settings never read back caused 707 re-initialisations
    in 4 s. The first is at once, the next back off (reconnect_initial doubling up to
    reconnect_max); from ESCALATE_AFTER in a row on it is reported; a passed health
    check ends the streak and the report."""
    sup, pauses, told = backing_off()
    restart = rule_for(RestartDetected("settings lost"), restart_seen=False)
    assert restart is not None
    for _ in range(6):
        sup.lifecycle = Lifecycle(initial=S.READY)
        assert await sup._recover(restart, RestartDetected("settings lost (AT+CSCS is IRA)"))
    assert pauses == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert sup._counters.reinitialisations == 6
    assert len(sup.trouble.texts) == 1
    assert "re-initialised 6 times in a row" in sup.trouble.texts[0]
    assert "AT+CSCS is IRA" in sup.trouble.texts[0]
    assert told[0][0].startswith(f"re-initialised {ESCALATE_AFTER} times in a row")
    await sup.health_check(FakeModem(refresh_registration=[1]))  # type: ignore[arg-type]
    assert sup.trouble.texts == () and told[-1] == ()
    sup.lifecycle = Lifecycle(initial=S.READY)
    await sup._recover(restart, RestartDetected("boot banner RDY"))
    assert pauses[-1] == 0.0  # a new streak: at once again


async def test_error_answers_in_a_row_back_off_across_bring_ups() -> None:
    """A poison message failed the drain after every bring-up: one re-initialisation
    every 0.5 s, because each bring-up reset the streak. Only a health check does now."""
    sup, pauses, _ = backing_off()
    error = CmeError("AT+CMGL", 320, "memory failure")
    rule = rule_for(error, restart_seen=False)
    assert rule is not None and rule.recovery is Recovery.PROBE_AFTER_BACKOFF
    for _ in range(4):
        sup.lifecycle = Lifecycle(initial=S.READY)
        await sup._recover(rule, error)
        sup.lifecycle = Lifecycle(initial=S.WAITING_FOR_NETWORK)
        assert await sup.bring_up(FakeModem())  # type: ignore[arg-type]
    assert pauses == [0.5, 1.0, 2.0, 4.0]
    assert sup._counters.reinitialisations == 4  # counted as re-initialisations too
    assert sup.trouble.texts == (
        "re-initialised 4 times in a row, now every 4 s at most: "
        "'AT+CMGL' failed: +CME ERROR 320 (memory failure)",
    )


async def test_a_setting_that_does_not_read_back_after_set_up_is_reported_and_run_with() -> None:
    """hostsim's cscs_reads_ira: AT+CSCS="UCS2" accepted, AT+CSCS? shows "IRA"."""
    modem = FakeModem(note_read_backs=[{"CSCS": "IRA"}, {}])
    sup, states = supervisor(S.SETTING_UP_SMS)
    assert await sup.bring_up(modem)  # type: ignore[arg-type]
    assert states[-1] is S.READY
    assert sup.trouble.texts == ("AT+CSCS reads back IRA right after it was set: running with it",)
    sup.lifecycle = Lifecycle(initial=S.SETTING_UP_SMS)
    assert await sup.bring_up(modem)  # type: ignore[arg-type]
    assert sup.trouble.texts == ()  # it sticks after this set-up: resolved


async def test_one_boot_printed_over_seconds_is_one_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Quectel BG96 (AT Commands Manual, "URC indication of module start"): RDY, then
    +CPIN: READY, +QIND: PB DONE, +QIND: SMS DONE as the SIM and SMS come up; SIMCom
    SIM7600 (AT command manual): RDY … SMS DONE, PB DONE. The later lines are the same
    boot; a new RDY is a new one, and so is any banner line once the window is over."""
    from device.at.codec import Urc

    sup, _ = supervisor(S.READY)
    sup.profile = PROFILES["quectel-bg96"]

    def urc(text: str) -> Urc:
        return Urc(text.partition(":")[0], text.partition(":")[2].strip(), text)

    sup.on_urc(urc("RDY"))
    assert sup.restarts.reason == "boot banner RDY"
    sup.restarts.reason = None  # the re-initialisation under way
    sup.lifecycle = Lifecycle(initial=S.WAITING_FOR_SIM)
    sup.on_urc(urc("+QIND: PB DONE"))
    sup.on_urc(urc("+QIND: SMS DONE"))
    assert sup.restarts.reason is None
    sup.lifecycle = Lifecycle(initial=S.READY)
    sup.on_urc(urc("SMS DONE"))  # after ready, still that boot
    assert sup.restarts.reason is None
    sup.on_urc(urc("RDY"))  # a new boot
    assert sup.restarts.reason == "boot banner RDY"
    sup.restarts.reason = None
    monkeypatch.setattr("device.modem.restarts.BOOT_WINDOW", 0.0)
    sup.on_urc(urc("SMS DONE"))  # the window is over: a restart without RDY
    assert sup.restarts.reason == "boot banner SMS DONE"


async def test_banners_while_probing_open_the_boot_window() -> None:
    """A boot seen while probing (agent start, or after a port loss) needs nothing,
    and its later lines during the bring-up are that boot too."""
    from device.at.codec import Urc

    sup, _ = supervisor(S.PROBING)
    sup.on_urc(Urc("RDY", "", "RDY"))
    sup.lifecycle = Lifecycle(initial=S.SETTING_UP_SMS)
    sup.on_urc(Urc("SMS DONE", "", "SMS DONE"))
    assert sup.restarts.reason is None


def test_trouble_follows_the_state_in_the_units_status() -> None:
    """systemd's STATUS= (sd_notify(3)) shows the state, then the trouble while any."""
    from device.service import SystemdStatus

    sent: list[str] = []

    class Notifier:
        def status(self, text: str) -> bool:
            sent.append(text)
            return True

    status = SystemdStatus(Notifier(), "/dev/ttyUSB2")  # type: ignore[arg-type]
    status.state_changed(S.SETTING_UP_SMS, S.WAITING_FOR_NETWORK)
    status.trouble(("AT+CSCS reads back IRA right after it was set: running with it",))
    status.state_changed(S.WAITING_FOR_NETWORK, S.READY)
    status.trouble(())
    assert sent == [
        "modem waiting_for_network on /dev/ttyUSB2",
        "modem waiting_for_network on /dev/ttyUSB2; AT+CSCS reads back IRA right after it "
        "was set: running with it",
        "modem ready on /dev/ttyUSB2; AT+CSCS reads back IRA right after it was set: "
        "running with it",
        "modem ready on /dev/ttyUSB2",
    ]
