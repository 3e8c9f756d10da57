"""Layer 2, the corpus: case files (safe YAML, the schema, generators), the inputs they describe, and the bundled
corpus and registry as package data (data/, schema/)."""
