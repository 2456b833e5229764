"""The pip route: ``pip install -e .`` gives the Python package and the ``wint3r-ros`` CLI
without building ROS messages (core, model, offline tools). Metadata lives in setup.cfg."""
from setuptools import setup

setup()
