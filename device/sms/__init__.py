"""SMS representations: the GSM 03.38 alphabet, TE character sets, text-mode records, PDUs."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.sms.pdu import (
        Address,
        Concat,
        DataCoding,
        Encoding,
        PduError,
        PduKind,
        SmsPdu,
        Ton,
        UdhElement,
        decode_pdu,
        encode_deliver,
        encode_submit,
        split_for_concat,
    )


def __getattr__(name: str) -> Any:
    """The PDU names load construct on first use only: a text-mode agent never needs it."""
    if name in __all__:
        from device.sms import pdu

        return getattr(pdu, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Address",
    "Concat",
    "DataCoding",
    "Encoding",
    "PduError",
    "PduKind",
    "SmsPdu",
    "Ton",
    "UdhElement",
    "decode_pdu",
    "encode_deliver",
    "encode_submit",
    "split_for_concat",
]
