"""smscmd: the gateway agent that receives Super SIM SMS Commands and answers them."""

__version__ = "0.1.0"
