"""SMS representations: the GSM 03.38 alphabet, TE character sets, text-mode records, PDUs."""

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
