#!/usr/bin/env bash
# System packages the test suite needs beyond Python (none yet for the foundation).
set -euo pipefail
# Browser tests (tests/returns/test_withdrawal_browser.py): playwright drives Debian's chromium.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  apt-get install -y --no-install-recommends chromium
fi
