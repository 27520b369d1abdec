#!/usr/bin/env bash
# The browser the admin page's end-to-end tests drive (tests/e2e/test_admin_page.py): Debian's
# Chromium, driven by Playwright through its executable (Playwright never downloads a browser here).
# Installed with apt-get when run as root; otherwise it says what is missing and the tests skip.
set -euo pipefail
say() { printf '[setup] %s\n' "$*"; }
for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then exit 0; fi
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing chromium (for the admin page's browser tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  say "no chromium: the admin page's browser tests will skip (apt-get install chromium, or set CHROMIUM=/path/to/chrome)"
fi
