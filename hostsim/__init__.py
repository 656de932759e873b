"""hostsim: a simulated Super SIM fleet for developing and testing smscmd, without hardware.

Two halves and a runtime:

* :mod:`hostsim.modem` — the emulated cellular module, sans-IO (bytes in,
  bytes out): AT interpreter, command handlers, settings, storage, text/PDU
  mode, personas, faults;
* :mod:`hostsim.cloud` — the emulated network (SmsCommand lifecycle,
  delivery, retries), the SmsCommands REST API and its callbacks;
* the runtime: :mod:`hostsim.pty` (a modem on a pseudo-terminal),
  :mod:`hostsim.sim` (``HostSim``, the fleet), :mod:`hostsim.cli`
  (``hostsim run``).
"""
