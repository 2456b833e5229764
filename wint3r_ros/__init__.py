"""wint3r_ros: WinT3R streaming 3-D reconstruction for N-camera rigs, as a ROS 2 package.

Rooms: ``core`` (ROS-free streaming logic), ``model`` (the network), ``data`` (synthetic rigs,
rosbag2 IO), ``train`` (losses, training, evaluation), ``ros`` (everything that imports rclpy).
"""
from __future__ import annotations

import os
import sys

__version__ = "0.1.0"
__all__ = ["__version__"]


def _find_generated_interfaces() -> None:
    """Let ``wint3r_ros.msg`` resolve when this package is imported from the source tree.

    colcon installs the generated message code next to a copy of this package; when Python picks
    the source tree first (a shell in the repository root puts it at the front of sys.path), the
    installed directory is appended to this package's search path so both halves import.
    """
    here = os.path.dirname(os.path.realpath(__file__))
    if os.path.isfile(os.path.join(here, "msg", "__init__.py")):
        return
    for entry in sys.path:
        candidate = os.path.join(entry or os.getcwd(), __name__)
        if os.path.isfile(os.path.join(candidate, "msg", "__init__.py")):
            __path__.append(candidate)  # module attribute of a package
            return


_find_generated_interfaces()
