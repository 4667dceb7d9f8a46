"""Travel documents: content-checked file types and the storage their bytes live in."""
