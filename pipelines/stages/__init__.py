"""The pipeline stages: prepare, train, evaluate, export. Each opens its own MLflow run.

A stage is a function `(config, inputs) -> result`; stages never import each other, the runner
wires them through the result types in `pipelines.stages.results`.
"""
