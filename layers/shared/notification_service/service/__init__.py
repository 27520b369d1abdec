"""Use cases: accept, look up, dispatch a round, readiness. Plain Python over the ports."""
