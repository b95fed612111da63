"""The returns app in the admin: one module per area."""

from returns.admin import (
    claims,  # noqa: F401  conformity claims (R23-R25)
    withdrawals,  # noqa: F401  withdrawals (R15-R22)
)
