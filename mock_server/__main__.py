"""``python -m wavespeed_mock.mock_server``: the ``wavespeed-mock`` command.

Not ``python -m wavespeed_mock``: a ``__main__.py`` at the top of the namespace
would be a top-level file of the distribution, and pytest marks such a file's
module (``__main__``) for assertion rewriting in every suite that loads the
plugin, which then warns (an error under ``-W error``) that ``__main__`` was
imported first.
"""

import sys

from .cli.main import main

sys.exit(main())
