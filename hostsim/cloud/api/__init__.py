"""The Super SIM SmsCommands REST API, emulated over HTTP (aiohttp) on hostsim's loop.

One module per concern:

* :mod:`~hostsim.cloud.api.middleware` — Twilio's conventions: HTTP Basic auth
  ``AccountSid:AuthToken`` on ``/v1`` and ``/_hostsim``, Twilio-shaped JSON
  errors ``{code, message, more_info, status}`` (400/20001 invalid parameter,
  401/20003 credentials, 404/20404 unknown resource or path, 405/20004 wrong
  method with ``Allow``, 500/20500 a bug);
* :mod:`~hostsim.cloud.api.resource` — the SmsCommands resource
  (``/v1/SmsCommands``: create, list with paging, fetch);
* :mod:`~hostsim.cloud.api.control` — hostsim's own ``/_hostsim/`` routes: an
  SMS straight into a modem, and the fault controls as one table;
* :mod:`~hostsim.cloud.api.server` — the app and :class:`ApiServer`, which
  also runs the callbacks (:mod:`hostsim.cloud.callbacks`): a ``to_sim``
  command with a ``CallbackUrl`` gets one request per announced status change
  (``sent``, ``delivered``, ``failed``; ``queued`` is not a change); every
  ``from_sim`` command goes to the fleet webhook.
"""
