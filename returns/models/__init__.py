"""Withdrawals (R15-R22) and conformity claims (R23-R25)."""

from returns.models.claims import *  # noqa: F403
from returns.models.withdrawals import *  # noqa: F403
