"""Fake of Libre.fm: the Last.fm fake's API and web-auth page under Libre.fm's name, its
own app credentials and GNU FM's rules where they differ (``api.py``)."""

from typing import Final

# Libre.fm registers no apps and GNU FM checks no key; 32 characters, as its README asks.
# The fake checks these and the signatures made with them all the same: a client that
# signs wrongly would be refused by a GNU FM server that checks, and Last.fm's does.
LIBREFM_API_KEY: Final = "sandbox-librefm-api-key-32-chars"
LIBREFM_API_SECRET: Final = "sandbox-librefm-shared-secret-32"
