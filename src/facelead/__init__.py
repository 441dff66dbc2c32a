"""FaceLead: policy-enforcing face search for investigative leads.

A search returns a ranked candidate list for trained examiners to review. It is
never an identification and never the sole basis for an arrest.
"""

__version__ = "0.1.0"

DISCLAIMER = "Investigative lead only — not a positive identification — not probable cause"
"""Printed above every candidate list, report and export (DESIGN.md principle 3)."""
