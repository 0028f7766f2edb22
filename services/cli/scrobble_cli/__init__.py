"""The ``scrobble`` console script: the operator's and the tests' way in (CONTRACTS section 7)."""
