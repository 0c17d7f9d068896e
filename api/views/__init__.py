"""The HTTP resources: one blueprint module per resource, registered by ``api.create_app``."""
