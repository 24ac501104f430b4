"""A/B tests of feature versions: experiments and the hash that assigns users to arms, the records
in the feature store, the exposure log, the offline replay, the readout and its HTML report."""
