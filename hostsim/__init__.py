"""hostsim: an emulated cellular modem on a pseudo-terminal, for developing and testing smscmd."""
