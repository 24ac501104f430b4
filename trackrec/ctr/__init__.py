"""CTR backbones with an optional RecCoT vector through an MLP connector (paper eq. 7-8); the
backbones by name in trackrec.ctr.registry."""
