"""Built-in analyzers of model-analyze.

Each module here is a pluggy plugin registered through the ``model_analyze``
entry-point group, exactly like a third-party plugin, and uses only the public
API (:mod:`model_analyze.plugin_api`, the context, the engines).
"""
