"""Use cases: the only place where authorisation, policy and audit happen."""
