import numpy as np

import actfast


def test_relu_smoke():
    np.testing.assert_array_equal(actfast.relu(np.array([-1.0, 0.0, 2.0])), [0.0, 0.0, 2.0])
