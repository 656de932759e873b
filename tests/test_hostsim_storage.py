"""hostsim.modem.storage: indices, capacity, statuses, delflags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hostsim.modem.storage import MessageStorage, Status, StoredMessage

WHEN = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def msg(status: Status = Status.REC_UNREAD, text: str = "hi") -> StoredMessage:
    return StoredMessage(status, "000", text, WHEN)


def test_status_names_and_numbers() -> None:
    assert [(s.text, s.number) for s in Status] == [
        ("REC UNREAD", 0),
        ("REC READ", 1),
        ("STO UNSENT", 2),
        ("STO SENT", 3),
    ]
    assert Status.from_text("rec read") is Status.REC_READ
    assert Status.from_number(3) is Status.STO_SENT
    with pytest.raises(ValueError):
        Status.from_text("ALL")
    with pytest.raises(ValueError):
        Status.from_number(4)


def test_naive_timestamp_refused() -> None:
    with pytest.raises(ValueError):
        StoredMessage(Status.REC_UNREAD, "000", "x", datetime(2026, 1, 1))


def test_store_lowest_free_index_until_full() -> None:
    store = MessageStorage("SM", 3, index_base=1)
    assert [store.store(msg()) for _ in range(3)] == [1, 2, 3]
    assert store.is_full
    assert store.store(msg()) is None
    assert store.delete(2)
    assert not store.delete(2)
    assert store.store(msg(text="again")) == 2
    assert (store.used, store.total) == (3, 3)
    assert store.in_range(1) and store.in_range(3)
    assert not store.in_range(0) and not store.in_range(4)


def test_get_and_set_status() -> None:
    store = MessageStorage("SM", 2)
    index = store.store(msg())
    assert index == 0
    store.set_status(0, Status.REC_READ)
    stored = store.get(0)
    assert stored is not None and stored.status is Status.REC_READ
    assert store.get(1) is None
    assert store.get(99) is None


def filled() -> MessageStorage:
    store = MessageStorage("SM", 10)
    for status in (Status.REC_UNREAD, Status.REC_READ, Status.STO_UNSENT, Status.STO_SENT):
        store.store(msg(status))
    return store


@pytest.mark.parametrize(
    ("delflag", "deleted"),
    [(1, [1]), (2, [1, 3]), (3, [1, 2, 3]), (4, [0, 1, 2, 3])],
)
def test_delete_by_flag(delflag: int, deleted: list[int]) -> None:
    store = filled()
    assert store.delete_by_flag(None, delflag) == deleted
    assert store.used == 4 - len(deleted)


def test_delete_by_flag_zero() -> None:
    store = filled()
    assert store.delete_by_flag(0, 0) == [0]
    assert store.delete_by_flag(0, 0) == []  # empty in-range slot: not an error
    with pytest.raises(ValueError):
        store.delete_by_flag(10, 0)
    with pytest.raises(ValueError):
        store.delete_by_flag(None, 0)
    with pytest.raises(ValueError):
        store.delete_by_flag(0, 5)


def test_list_by_status() -> None:
    store = filled()
    assert [i for i, _ in store.list()] == [0, 1, 2, 3]
    assert [i for i, _ in store.list(Status.STO_SENT)] == [3]


def test_bad_construction() -> None:
    with pytest.raises(ValueError):
        MessageStorage("SM", 0)
    with pytest.raises(ValueError):
        MessageStorage("SM", 1, index_base=-1)
