"""python -m omsup: the same as the ``omsup`` command."""

import sys

from .cli import main

sys.exit(main())
