"""The test suite's settings: development mode, as `make test` on a fresh clone has it.

`DJANGO_DEBUG` is read when settings load (secret key, hosts, static storage); pytest-django
still runs each test with DEBUG off. It is set in the environment, not just here, so that the
servers, workers and commands the tests start inherit it.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: F403
