"""Point the ROS 2 PyPI wheels' CMake exports at this machine's Python and numpy.

The wheels were built under /opt/python/cp311-cp311 and their exported
`share/*/cmake/*.cmake` files name that builder's include directories; rosidl's
Python generator then fails to find Python.h / numpy headers when it builds
rtmdl_interfaces. Rewriting those two paths is all it takes.
"""
import pathlib
import re
import sys
import sysconfig

import numpy


def main(venv: str) -> int:
    python_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()
    # Builder paths look like /opt/python/cp311-cp311/include/python3.11 and
    # /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include.
    numpy_pat = re.compile(r'/opt/python/[^/;"\s]+/lib/python3\.\d+/site-packages/numpy/(_core|core)/include')
    python_pat = re.compile(r'/opt/python/[^/;"\s]+/include/python3\.\d+')
    changed = 0
    for path in pathlib.Path(venv, 'share').glob('*/cmake/*.cmake'):
        text = path.read_text()
        if '/opt/python/' not in text:
            continue
        new = numpy_pat.sub(numpy_include, text)
        new = python_pat.sub(python_include, new)
        if new != text:
            path.write_text(new)
            changed += 1
    print(f'[setup] rewrote builder include paths in {changed} CMake files')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
