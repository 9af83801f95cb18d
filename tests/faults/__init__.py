"""The fault-injection suite: real stores behind a loopback fault proxy (``proxy.py``)."""
