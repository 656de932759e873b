"""The Node-RED recipe (hardware/node-red/smscmd-handler.json, README "MQTT"): valid
flow JSON with the agent's topics, wired mqtt in → function → mqtt out; and its
function nodes run in Debian's node (tests/node-red/install) the way Node-RED's function
node runs them (the body as a function of ``msg`` with ``node``, ``context`` and
``flow``), fed the agent's own request (device/mqtt/handlers.py), their answers read by
the agent's own parsers.

Sources: Node-RED's flow file format and node properties as its editor saves them
(node-red/node-red, packages/node_modules/@node-red/nodes/core/network/10-mqtt.html:
``mqtt in`` topic/qos/datatype/broker, ``mqtt out`` topic/qos/retain/broker, an empty
``mqtt out`` topic publishes to ``msg.topic``; core/function/10-function.js: the
function body runs with ``msg``, ``node``, ``context``, ``flow``, and returning null
sends nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from device.commands import CommandContext, StatusSnapshot
from device.mqtt.handlers import parse_response, request
from device.mqtt.send import parse_request

FLOW = Path(__file__).resolve().parents[1] / "hardware/node-red/smscmd-handler.json"
PREFIX = "smscmd/gateway"


def nodes() -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in json.loads(FLOW.read_text())}


def by_name(name: str) -> dict[str, Any]:
    (node,) = [n for n in nodes().values() if n.get("name") == name]
    return node


def test_the_flow_is_wired_with_the_agents_topics() -> None:
    flow = nodes()
    (broker,) = [n for n in flow.values() if n["type"] == "mqtt-broker"]
    for node in flow.values():
        if node["type"] in ("mqtt in", "mqtt out"):
            assert node["broker"] == broker["id"] and node["qos"] == "1"
        for outputs in node.get("wires", []):
            assert all(target in flow for target in outputs)
    incoming, answer, outgoing = (by_name(n) for n in ("lights request", "answer lights",
                                                       "lights response"))  # fmt: skip
    assert incoming["topic"] == f"{PREFIX}/handlers/lights/request"
    assert incoming["datatype"] == "json"
    assert incoming["wires"] == [[answer["id"]]] and answer["wires"] == [[outgoing["id"]]]
    assert outgoing["topic"] == "" and outgoing["retain"] == "false"  # msg.topic: the response
    assert by_name("send")["topic"] == f"{PREFIX}/send"
    assert by_name("send result")["topic"] == f"{PREFIX}/send/result"


#: Node-RED's function sandbox, as far as these functions use it.
HARNESS = """
const fs = require("fs");
const [source, messages] = JSON.parse(fs.readFileSync(0, "utf8"));
const store = {context: {}, flow: {}};
const scope = (name) => ({get: (k) => store[name][k], set: (k, v) => { store[name][k] = v; }});
const node = {warn: (text) => process.stderr.write(String(text) + "\\n")};
const run = new Function("msg", "node", "context", "flow", source);
const out = messages.map((msg) => run(msg, node, scope("context"), scope("flow")) || null);
process.stdout.write(JSON.stringify(out));
"""


def run_function(name: str, *messages: dict[str, Any]) -> list[dict[str, Any] | None]:
    program = shutil.which("node") or shutil.which("nodejs")
    if program is None:
        reason = "node is not installed (`bash tests/node-red/install` as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run([program, "-e", HARNESS], input=json.dumps([by_name(name)["func"],
                          list(messages)]), capture_output=True, text=True, timeout=30,
                          check=True)  # fmt: skip
    result: list[dict[str, Any] | None] = json.loads(done.stdout)
    return result


def lights(argument: str | None, journal_id: int) -> dict[str, Any]:
    """The message Node-RED's ``mqtt in`` makes of the agent's request (datatype json)."""
    snapshot = StatusSnapshot("ready", "home", "-67 dBm")
    ctx = CommandContext("lights", argument, "000", None, journal_id, lambda: snapshot)
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    payload = json.loads(json.dumps(request(ctx, f"c{journal_id}", deadline)))
    return {"topic": f"{PREFIX}/handlers/lights/request", "payload": payload, "qos": 1}


def test_the_handler_function_answers_the_agents_request() -> None:
    on, again, status, bad = run_function(
        "answer lights", lights("ON", 1), lights("on", 1), lights(None, 2), lights("dim", 3)
    )
    assert on is not None and on["topic"] == f"{PREFIX}/handlers/lights/response"
    assert on["payload"]["correlation_id"] == "c1"
    assert parse_response(on["payload"]).reply == "lights on"
    assert again is None  # the same journal id twice (a QoS 1 redelivery): answered once
    assert status is not None and parse_response(status["payload"]).reply == "lights are on"
    assert bad is not None
    failed = parse_response(bad["payload"])
    assert (failed.reply, failed.error) == ("usage: lights: on|off", "unknown argument dim")
    assert run_function("answer lights", {"topic": "x", "payload": "text"}) == [None]


def test_the_send_function_makes_a_request_the_agent_takes() -> None:
    (message,) = run_function("send request", {"payload": 1})
    assert message is not None
    correlation, text, destination = parse_request(json.dumps(message["payload"]).encode())
    assert correlation.startswith("node-red-") and text == "hello from Node-RED"
    assert destination is None  # the agent's reply_to, 000
