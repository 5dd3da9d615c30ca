"""The model-serving runtime: registered models put to work, online behind HTTP and offline in
batch (:mod:`loopml.serving.batch` scores a file, a folder of Parquet files or a dataset version
in chunks, locally or on a Ray cluster). It sits above the models layer and below the CLI.
"""
