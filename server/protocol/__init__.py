"""The sans-I/O protocol core: envelopes, validation, codecs, the session state machine.

Nothing in this package imports asyncio or aiohttp (tests/test_layering.py checks it).
"""
