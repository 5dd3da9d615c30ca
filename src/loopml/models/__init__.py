"""Models: packaging with a signature, safe loading, the registry, evaluation and the release gate."""
