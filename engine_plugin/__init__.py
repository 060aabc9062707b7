"""engine_plugin."""
