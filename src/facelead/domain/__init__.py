"""Records, enums, rules and state machines. Pure Python: no SQL, HTTP or models."""
