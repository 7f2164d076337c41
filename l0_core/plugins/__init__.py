"""The plugin system: the hook specifications (``hookspecs``), discovery and the
registries (``host``), the built-in registrations (``builtins``) and
configuration by name (``config``)."""
