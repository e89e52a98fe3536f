"""Provider adapters behind one interface (base.Provider) and the registry that builds them."""
