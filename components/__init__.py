"""meshstack components: one ComponentResource per module, plus pure helpers."""
