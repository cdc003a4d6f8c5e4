"""Tools for development and the demo, not the product: the synthetic data generator, the
local test services (Tansu, MariaDB) and the in-process runs behind ``idr demo``.
"""
