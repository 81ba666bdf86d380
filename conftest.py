"""pytest glue: the matrix plugin, harness.pytest_plugin (collectors, items, the verdict table).

An installed harness registers it through its `pytest11` entry point, under this same name, so
naming it here registers it once: for a checkout that is not installed too. `pytest matrix/`
collects this repository's cells; see the plugin's docstring for its options.
"""
pytest_plugins = ["harness.pytest_plugin"]
