"""``python -m wavespeed_mock``: the ``wavespeed-mock`` command, for where no script is on PATH.

``wavespeed_mock`` is a namespace package (its areas install as sub-packages);
this module is its only top-level file.
"""

from __future__ import annotations

import sys

from wavespeed_mock.mock_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
