"""Prometheus metrics of the agent: the optional ``[metrics]`` table.

:mod:`device.metrics.config` reads the table (no third-party import);
:mod:`device.metrics.exporter` feeds ``prometheus_client`` metrics from the agent's
observer hooks and counters and exposes them as a node_exporter textfile and/or on a
local HTTP port. The service imports the exporter, and with it ``prometheus_client``,
only when the table is present: an agent without ``[metrics]`` loads none of it.
"""

from device.metrics.config import DEFAULT_INTERVAL, MetricsConfig, parse_metrics

__all__ = ["DEFAULT_INTERVAL", "MetricsConfig", "parse_metrics"]
