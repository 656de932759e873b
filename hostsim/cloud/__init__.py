"""The cloud half of hostsim: the emulated Super SIM network and its SmsCommands API.

:mod:`~hostsim.cloud.network` owns the SmsCommand records, their status
lifecycle, delivery and retries, and talks to each gateway through the
:class:`~hostsim.cloud.network.Gateway` protocol; :mod:`~hostsim.cloud.api`
serves the Twilio-shaped REST API and hostsim's ``/_hostsim/`` controls;
:mod:`~hostsim.cloud.callbacks` sends the status callbacks and the fleet
webhook. Nothing here parses AT commands.
"""
