"""Test helper: ``python -m tests.support.serve [serve options]`` is ``switchyard serve`` whose app also has the test
routes (``tests.support.streams``), in-process and in every worker. End-to-end tests start it through
``running_server(..., test_routes=True)``; the production CLI never serves those routes.
"""

from __future__ import annotations

import sys

from entrypoints.cli import main
from tests.support.streams import served_test_app

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]], build_app=served_test_app))
