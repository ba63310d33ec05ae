"""``python -m mlx_upsample``: the installation self-check (see _selfcheck)."""

import sys

from ._selfcheck import main

sys.exit(main())
