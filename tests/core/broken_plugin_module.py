"""A plugin module whose import fails (for the plugin-host tests; not a test module)."""

raise ImportError("this plugin needs a library that is not installed")
