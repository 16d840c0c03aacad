// Placeholder until the HTTP layer lands; delete when http/ has real sources.
