"""Schemathesis hooks for the contract run (``SCHEMATHESIS_HOOKS=contract_hooks``).

Every request gets its own Idempotency-Key, as a till gives every new attempt its own:
Hypothesis draws the same few minimal keys ("0", "!") for every operation and body, and
the server rightly answers 422 to a key reused for a different request. A key that breaks
the documented format (a negative case) is sent as drawn, so its 422 is still checked.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Only positive cases: a negative one (say, Authorization left out on purpose) edited
    # here would be judged anew as positive and sent with the header put back.
    meta = case.meta
    if meta is not None and meta.generation.mode.is_negative:
        return
    headers = case.headers
    key = headers.get("Idempotency-Key") if headers else None
    if isinstance(key, str) and _VALID_KEY.match(key):
        headers["Idempotency-Key"] = f"contract-{uuid.uuid4()}"
