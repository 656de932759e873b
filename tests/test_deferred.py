"""device/deferred.py: the modules construct imports but the PDU codec never uses
(hashlib, pickle, pdb) loaded at their first use in ``smscmd run`` (issue 14: 3.5 MiB
of libcrypto in PDU mode when ssl is left out). Each case runs in a fresh interpreter:
the stand-ins live in :data:`sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

TIMEOUT = 60


def run(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_pdu_codec_loads_none_of_them_and_libcrypto_stays_out() -> None:
    """With ssl left out as under the unit, the PDU codec (construct) imported and used
    leaves the three unloaded and libcrypto unmapped."""
    seen = run("""
        import json, os, sys
        os.environ["SMSCMD_TLS"] = "0"
        from device.tls import apply
        from device.deferred import Deferred, defer
        apply(os.environ)
        deferred = defer()
        import asyncio
        from device.sms import pdu
        from device.sms.pdu import decode_pdu
        # 3GPP TS 23.040 §9.2.2.1 SMS-DELIVER, the classic example of tests/test_pdu.py
        CLASSIC_DELIVER = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
        decode_pdu(CLASSIC_DELIVER)
        maps = open("/proc/self/maps").read()
        print(json.dumps({
            "deferred": deferred,
            "stand_ins": sorted(n for n in deferred if isinstance(sys.modules[n], Deferred)),
            "libcrypto": "libcrypto" in maps,
        }))
    """)
    assert seen == {"deferred": ["hashlib", "pickle", "pdb"],
                    "stand_ins": ["hashlib", "pdb", "pickle"], "libcrypto": False}  # fmt: skip


def test_the_first_use_loads_the_real_module() -> None:
    """``import`` binds the stand-in; the first attribute read imports the real module,
    which answers every read from then on, for holders of the stand-in too."""
    seen = run("""
        import json, sys
        from device.deferred import Deferred, defer
        defer()
        import hashlib
        stand_in = hashlib
        digest = hashlib.sha256(b"smscmd").hexdigest()
        from pickle import dumps, loads
        import pdb
        print(json.dumps({
            "stand_in": isinstance(stand_in, Deferred),
            "digest": digest,
            "real_now": not isinstance(sys.modules["hashlib"], Deferred),
            "same": stand_in.sha256 is sys.modules["hashlib"].sha256,
            "pickle": loads(dumps({"a": 1})),
            "pdb": pdb.Pdb.__name__,
        }))
    """)
    import hashlib

    assert seen == {
        "stand_in": True,
        "digest": hashlib.sha256(b"smscmd").hexdigest(),
        "real_now": True,
        "same": True,
        "pickle": {"a": 1},
        "pdb": "Pdb",
    }


def test_a_module_already_imported_is_left_alone() -> None:
    seen = run("""
        import hashlib, json, sys
        from device.deferred import defer
        print(json.dumps({"deferred": defer(), "same": sys.modules["hashlib"] is hashlib}))
    """)
    assert seen == {"deferred": ["pickle", "pdb"], "same": True}
