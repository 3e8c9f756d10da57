"""softmax-conformance: cross-framework conformance suite for softmax, log-softmax and cross-entropy."""

__version__ = "0.1.0"
