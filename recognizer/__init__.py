"""The whole recognizer as an MLflow model: the pipeline around the version's digit graph, as a pyfunc."""
