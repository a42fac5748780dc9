import os
import sys

import actfast

# Shared test helpers (tests/_ulp.py) import as top-level modules under every import
# mode, --import-mode=importlib (CI) included.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_report_header(config):
    return f"actfast {actfast.__version__} from {os.path.dirname(actfast.__file__)} (isa {actfast._isa})"
