"""The lifecycle table decides: every (state, trigger) pair walked against it."""

from __future__ import annotations

import itertools

import pytest

from device.modem import IGNORABLE, TRANSITIONS, InvalidTrigger, Lifecycle, ModemState, Trigger

S, T = ModemState, Trigger


def _table() -> dict[tuple[ModemState, Trigger], ModemState]:
    """(source, trigger) → dest, from TRANSITIONS; a pair declared twice fails here."""
    out: dict[tuple[ModemState, Trigger], ModemState] = {}
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            key = (source, Trigger(row["trigger"]))
            assert key not in out, f"{key} declared twice"
            out[key] = row["dest"]
    return out


TABLE = _table()


@pytest.mark.parametrize(("state", "trigger"), list(itertools.product(S, T)))
def test_every_pair_follows_the_table(state: ModemState, trigger: Trigger) -> None:
    changes: list[tuple[ModemState, ModemState]] = []
    life = Lifecycle(lambda a, b: changes.append((a, b)), initial=state)
    if (state, trigger) in TABLE:
        life.fire(trigger)
        dest = TABLE[state, trigger]
        assert life.state is dest
        assert changes == ([] if dest is state else [(state, dest)])
    elif (state, trigger) in IGNORABLE:
        life.fire(trigger)
        assert (life.state, changes) == (state, [])
    else:
        with pytest.raises(InvalidTrigger) as info:
            life.fire(trigger)
        assert (info.value.state, info.value.trigger) == (state, trigger)
        assert (life.state, changes) == (state, [])


def test_ignorable_pairs_have_no_transition_and_a_reason() -> None:
    for pair, reason in IGNORABLE.items():
        assert pair not in TABLE
        assert reason


def test_stopped_is_final() -> None:
    assert not [pair for pair in TABLE if pair[0] is S.STOPPED]
    life = Lifecycle(initial=S.DISCONNECTED)
    life.fire(T.STOP)
    with pytest.raises(InvalidTrigger, match="stop is not valid in state stopped"):
        life.fire(T.STOP)


def test_the_happy_path_and_the_way_back() -> None:
    life = Lifecycle()
    path = [T.CONNECTED, T.ANSWERED, T.CONFIGURED, T.SIM_READY, T.SMS_READY, T.REGISTERED]
    for trigger in path:
        life.fire(trigger)
    assert life.state is S.READY
    life.fire(T.DEREGISTERED)
    assert life.state is S.WAITING_FOR_NETWORK
    life.fire(T.PORT_LOST)
    life.fire(T.PORT_LOST)  # declared ignorable: the port is already closed
    assert life.state is S.DISCONNECTED
