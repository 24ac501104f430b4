"""RecCoT features: text encoder, Feast definitions, versioned publishing for A/B arms."""
