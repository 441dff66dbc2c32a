"""Input field types shared by the routes.

Text never contains control characters such as NUL: PostgreSQL refuses NUL
in text, and a refused action's audit event records what was asked, so such
input is turned away here, as a 422, before any service sees it. Ids are
bounded to what the database can hold. Everything else (case number format,
username rules, allowed purposes...) is checked by the domain, with its own
error codes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_ID = 2**31 - 1
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and newlines are allowed in notes
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=ONE_LINE)]
Line = Annotated[str, Field(max_length=200, pattern=ONE_LINE)]
Notes = Annotated[str, Field(max_length=4000, pattern=NO_CONTROL)]
Secret = Annotated[str, Field(min_length=1, max_length=1024, pattern=ONE_LINE)]

SearchId = Annotated[int, Path(ge=1, le=MAX_ID, description="The search id (from the receipt).")]
CaseNumber = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=ONE_LINE,
        description="The case number as the agency writes it (it may contain '/').",
    ),
]
Username = Annotated[
    str, Path(min_length=1, max_length=64, pattern=ONE_LINE, description="A username.")
]
