"""Decode -> detect -> align -> quality -> embed -> score. Pure: no storage, no HTTP."""
