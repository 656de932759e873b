"""The hostsim console: a live web page of the simulated fleet (``hostsim run --console``).

* :mod:`~hostsim.console.hub` — the model: each Sim's modem state, registration,
  signal and storage, the SmsCommands with their status histories, each modem's
  AT traffic; fanned out as server-sent events.
* :mod:`~hostsim.console.traffic` — a modem's line traffic cut into lines, bounded.
* :mod:`~hostsim.console.routes` — the page at ``/`` of the API, its files, the
  ``/_hostsim/console/events`` stream.
* ``static/`` — the page: plain HTML, JavaScript and CSS, package data (no
  build step, nothing fetched from elsewhere).

The page acts through the API's own routes (``POST /v1/SmsCommands``, the
``/_hostsim`` SMS route and fault controls), with the API's credentials.
"""
