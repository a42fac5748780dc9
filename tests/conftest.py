import os

import actfast


def pytest_report_header(config):
    return f"actfast {actfast.__version__} from {os.path.dirname(actfast.__file__)} (isa {actfast._isa})"
