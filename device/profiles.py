"""Module profiles: re-exported from :mod:`device.modem.profiles`, where they live."""

from device.modem.profiles import PROFILES, Profile, by_name, detect, is_banner, resolve

__all__ = ["PROFILES", "Profile", "by_name", "detect", "is_banner", "resolve"]
