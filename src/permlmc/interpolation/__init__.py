"""The linear path between two networks: the curve along it (path), BatchNorm along the path (batchnorm)
and the input-layer shortcut that computes the first layer twice instead of once per alpha (input_layer)."""
