from scipy.special import log_softmax, softmax  # noqa: F401 - the stand-in for cupyx.scipy.special
