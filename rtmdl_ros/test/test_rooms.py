"""The house rule: no import runs from a lower room to a higher one
(core/data < models < backends < nodes < the top-level commands), and core has no ROS."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1] / 'rtmdl_ros'
RANK = {'core': 0, 'data': 0, 'models': 1, 'backends': 2, 'nodes': 3}


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield (node.module or '').split('.')[0], 0
            else:
                yield (node.module or '').split('.')[0], node.level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split('.')[0], 0


def test_no_room_imports_a_higher_one():
    upward = []
    for f in ROOT.rglob('*.py'):
        rel = f.relative_to(ROOT).parts
        if len(rel) < 2 or rel[0] not in RANK:
            continue
        for module, level in _imports(f):
            if level == 2 and module:
                target = RANK.get(module, 9)          # 9: a top-level module (cli, bringup, evaluation, ...)
            elif level == 0 and module == 'rtmdl_ros':
                target = 9
            else:
                continue
            if target > RANK[rel[0]]:
                upward.append(f'{"/".join(rel)} imports {module}')
    assert not upward, upward


def test_core_imports_no_ros():
    ros = {'rclpy', 'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'rtmdl_interfaces', 'builtin_interfaces'}
    found = [f'{f.name}: {m}' for f in (ROOT / 'core').rglob('*.py') for m, lvl in _imports(f) if lvl == 0 and m in ros]
    assert not found, found
