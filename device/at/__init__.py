"""AT command layer: sans-IO framing codec, asyncio channel, error hierarchy."""
